"""The Node core's roles, one module each: what a node in that role does with each message
and timer. `actors/node.py` puts them into the step table."""
