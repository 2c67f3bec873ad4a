"""Where pixels come from: STAC search, provider profiles and signing, COG window reads, scaling, the fetch cache.

May import the basics in ``geo`` (aoi, grid, periods, bands, config, errors, fsutil, stack); touches network and disk.
"""
