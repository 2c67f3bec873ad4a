"""Pure array stages of one task: cloud mask, composite, indices, detection (rules + model fusion), vectorise.

May import the basics in ``geo`` and ``models`` (inference); no network, no disk.
"""
