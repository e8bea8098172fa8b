"""Check and grade anyone's implementation of the homework's functions, or any module of functional ops.

    python -m simple_conv_net.check path/to/simple_conv_net_func.py --rubric homework
    python -m simple_conv_net.check vector_ops
    python -m simple_conv_net.check --batch submissions/ --rubric homework

Candidate code runs only in child processes (:mod:`.sandbox`); native PyTorch is the oracle, in
this process. The modules, in the order a check goes through them: targets (what to check),
forms (which names), plans (which calls), sandbox, child and records (running them, and their
results back), runner (recording), oracle (native's answer), analysis, scratch and kinks (checks),
hypotheses and diagnose (why), training (task 3), rubric, report (outputs), grade (one target),
batch (a folder of them), cli.
"""
