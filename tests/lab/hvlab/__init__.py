"""The hyperv.integration test lab: a WS-Management double of a Hyper-V host.

Nothing here imports from plugins/: the lab implements docs/dev/powershell-protocol.md on its own so
that a misunderstanding on either side shows up as a failing test instead of cancelling out.
"""
