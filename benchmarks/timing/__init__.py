"""The parts of ``benchmarks/epoch_timing.py``, each in its own module:

    core      the timing core: device-synchronised clocks and interleaved, rotated rounds
    machine   the machine, its load and the thread settings, recorded before anything is timed
    measure   one (model, batch size) point: models from the same weights, training steps, inference
    flops     floating-point operations of a training step, from the shapes, and the GEMM rate
    layers    the per-layer forward/backward profile of any model
    memory    peak resident memory of each impl, one fresh subprocess per impl
    matrix    every (model, batch size) point of a run, and the cost growth over batch sizes
    output    the text tables and the JSON file
    plot      the cost-growth plot (PNG)
"""
