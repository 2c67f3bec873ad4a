"""The run: task specs and their execution, the executor seam (Dask), resume, manifest, recompute.

May import every wing below it (basics, sources, stages, results) and ``models``; never the simulator.
"""
