"""Fields on the sphere: latitude-longitude grids with quadrature, spherical-harmonic transforms
(through the optional extra ``sphere``: torch-harmonics) and area-weighted metrics."""
