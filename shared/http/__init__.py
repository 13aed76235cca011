"""HTTP pieces every service's FastAPI side uses: problems, limits, metrics, probes."""
