"""`make bench`: Turnout's added latency, throughput, CPU and memory against a fast mock upstream."""
