"""`make deploy-check`: prove offline everything about `sam deploy` that can be proved without AWS.

Run as `python -m scripts.deploy_check` from the repo root (the Makefile does, after `sam build`).
What each step proves and today's figures: docs/deploy-check.md.
"""
