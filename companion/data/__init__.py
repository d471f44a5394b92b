"""Data for the course: generated from a seed or shipped with the package, never downloaded."""
