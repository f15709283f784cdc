"""Build: templates -> docker/ and the workflow (render), images (build), and the benchmarks."""
