"""Static checks of the PowerShell the collection ships (tree-sitter), used by tests/unit/pscheck.

The parsing helpers live in the lab (tests/lab/hvlab/pstree.py), which needs them at run time too.
"""
