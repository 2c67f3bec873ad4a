"""minewatch geo: find and measure rare-earth mining footprints in Sentinel-2 imagery.

The package is organised along the data flow (see ARCHITECTURE in the README):
``aoi`` → ``stac`` → ``load`` → ``cloud`` → ``composite`` → ``indices``/``detect`` →
``vectorize`` → ``sites`` → ``change`` → ``export``/``report``; ``pipeline`` runs it.
"""

__version__ = "0.1.0"
