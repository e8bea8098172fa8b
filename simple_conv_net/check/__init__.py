"""Check and grade anyone's implementation of the homework's functions, or any module of functional ops.

    python -m simple_conv_net.check path/to/simple_conv_net_func.py --rubric homework
    python -m simple_conv_net.check vector_ops
    python -m simple_conv_net.check --batch submissions/ --rubric homework

Candidate code runs only in child processes (:mod:`.sandbox`); native PyTorch is the oracle, in
this process. The modules, in the order a check goes through them: targets (what to check),
forms (which names), plans (which calls), sandbox and child (running them), runner (recording),
oracle (native's answer), analysis (checks), hypotheses and diagnose (why), training (task 3),
rubric, report (outputs), grade (one target), batch (a folder of them), cli.
"""
