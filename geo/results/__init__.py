"""What a run reports: sites, change, claims, exports (GeoJSON, GeoPackage + QGIS styles), quicklooks, report.

May import the basics in ``geo`` and ``geo.stages``; writes files.
"""
