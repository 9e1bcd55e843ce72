"""CDK constructs, one per concern; the stacks in infra/stacks.py only compose them."""
