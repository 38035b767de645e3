"""Statistics on value distributions: distances and their permutation tests and intervals
(``distance``), dispersion, and the encoder check by identification (``identify``)."""
