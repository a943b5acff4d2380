"""What the search measures for real, outside its light core: timings on the shipped runtime
(:mod:`.latency`) and short distillations of sampled genomes (:mod:`.distillation`)."""
