"""The trusted side: hidden tests, reference solution, scores. Never runs student code."""
