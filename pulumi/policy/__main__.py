"""The policy pack: `pulumi preview --policy-pack pulumi/policy` runs mlops_pulumi.policies."""

import sys
from pathlib import Path

from pulumi_policy import EnforcementLevel, PolicyPack, ResourceValidationPolicy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops_pulumi.policies import RULES, Rule


def _validate(rule: Rule):
    def validate(args, report_violation) -> None:
        for message in rule.check(args.resource_type, args.props):
            report_violation(message)
    return validate


PolicyPack(
    name="mlops-platform",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[ResourceValidationPolicy(name=r.name, description=r.description,
                                       validate=_validate(r)) for r in RULES],
)
