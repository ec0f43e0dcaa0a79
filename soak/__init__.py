"""The fault soak (`make soak`, `python -m soak`) and the fault helpers the tests share with it."""
