"""churn: the project's own code.

Custom models, feature transforms and pipeline steps go here; mlops.yaml says what the kit
runs, and a later mlops-kit release defines how it loads code from this package.
"""
