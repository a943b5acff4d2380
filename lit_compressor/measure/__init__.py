"""What the search measures for real, outside its light core: timings on the shipped runtime
(:mod:`.timing`) and short distillations of sampled genomes (:mod:`.distillation`), driven by :mod:`.ide`; and
the benchmark scripts' shared helpers (:mod:`.bench`: timed blocks, per-call times, peak memory)."""
