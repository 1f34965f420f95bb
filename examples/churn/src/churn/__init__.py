"""churn: the project's own code.

A model of the team's own: a scikit-learn-API estimator class, or a function returning one,
in a module here (say `churn/models.py`), named in mlops.yaml as
`model.framework: sklearn` and `model.estimator: churn.models:Name`. The kit imports it
with this folder's parent (`src/`) on the path, and the image installs this package.
"""
