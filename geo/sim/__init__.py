"""The scene simulator (spectra, layouts, atmosphere), the demo dataset writer and truth checks.

May import the basics in ``geo`` and ``geo.results.export`` (raster reading); the run path never imports it.
"""
