"""Walk-on-spheres: Monte-Carlo Poisson solutions on SDF domains, and training operators with them."""

from oplearn.wos.domains import Ball, Box, Difference, Domain, Intersection, Polygon, StarShaped, Union
from oplearn.wos.walk import DirichletProblem, Estimate, walk_on_spheres

__all__ = [
    "Ball",
    "Box",
    "Difference",
    "DirichletProblem",
    "Domain",
    "Estimate",
    "Intersection",
    "Polygon",
    "StarShaped",
    "Union",
    "walk_on_spheres",
]
