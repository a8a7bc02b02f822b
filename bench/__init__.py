"""FacePass's benchmarks: the suites of ../shared/BENCHMARKS.md, their protocols, report, plots
and the dlib peer, with their command line (`python -m bench ...`, cli.py).

Measuring code, not product: it lives beside `tests/`, outside the `facepass` package and its
image, and imports the product from `libs` (and, where it measures a service's own piece, from
that service); every server it measures is started with the `facepass` command.
"""
