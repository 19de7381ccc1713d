"""2D U(1) lattice gauge theory: links, plaquettes, Wilson action, topological charges, exact results
(:mod:`.u1`) and the plain HMC baseline (:mod:`.hmc`) that LeapfrogLayers generalises."""
