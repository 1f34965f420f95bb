"""`.gitlab-ci.yml`: the GitHub workflow's jobs as GitLab CI jobs. Each deploy job logs in with
a GitLab ID token (`id_tokens`): AWS by `aws sts assume-role-with-web-identity`, Azure by
`az login --federated-token`, Google Cloud by a workload identity federation credential file.
A later environment's job is manual and names its GitLab environment (protect it)."""

from __future__ import annotations

from typing import Any

from mlops_kit.adapters.aws import naming
from mlops_kit.config import LoadedConfig
from mlops_kit.config.model import ProjectConfig
from mlops_kit.project import ci
from mlops_kit.project.toolchain import CDK_CLI, NODE, PYTHON

PATH = ".gitlab-ci.yml"
PYTHON_IMAGE = f"python:{PYTHON}"
# Node.js for the cdk CLI, Debian's python3 for the project (its venv: PEP 668).
NODE_IMAGE = f"node:{NODE}-bookworm"
CDK = f"npx --yes aws-cdk@{CDK_CLI} --no-notices"
ON_PUSH = [{"if": "$CI_PIPELINE_SOURCE == 'push' && $CI_COMMIT_BRANCH == '{branch}'"}]
PULUMI = ["curl -fsSL https://get.pulumi.com | sh", 'export PATH="$HOME/.pulumi/bin:$PATH"']
VENV = ["apt-get update -q", "apt-get install -y python3-venv", "python3 -m venv .venv",
        'export PATH="$PWD/.venv/bin:$PATH"']
AWS_LOGIN = [
    'creds=$(aws sts assume-role-with-web-identity --role-arn "$AWS_DEPLOY_ROLE_ARN" '
    '--role-session-name "gitlab-$CI_PIPELINE_ID" --web-identity-token "$AWS_ID_TOKEN" '
    "--query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)",
    'read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN <<< "$creds"',
    "export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN"]
# The external-account credential file of workload identity federation (the heredoc expands
# the variables): Google's libraries and the Pulumi provider read it.
GCP_CREDENTIALS = """cat > .gcp-credentials.json <<EOF
{"type": "external_account",
 "audience": "//iam.googleapis.com/$GCP_WORKLOAD_IDENTITY_PROVIDER",
 "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
 "token_url": "https://sts.googleapis.com/v1/token",
 "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/$GCP_SERVICE_ACCOUNT:generateAccessToken",
 "credential_source": {"file": "$CI_PROJECT_DIR/.gcp-id-token"}}
EOF"""
GCP_LOGIN = ['printf "%s" "$GCP_ID_TOKEN" > "$CI_PROJECT_DIR/.gcp-id-token"', GCP_CREDENTIALS,
             'export GOOGLE_APPLICATION_CREDENTIALS="$CI_PROJECT_DIR/.gcp-credentials.json"']
AZURE_LOGIN = [
    'az login --service-principal -u "$AZURE_CLIENT_ID" -t "$AZURE_TENANT_ID" '
    '--federated-token "$AZURE_ID_TOKEN"',
    'export ARM_USE_OIDC=true ARM_OIDC_TOKEN="$AZURE_ID_TOKEN" ARM_CLIENT_ID="$AZURE_CLIENT_ID" '
    'ARM_TENANT_ID="$AZURE_TENANT_ID"']


def pipeline(loaded: LoadedConfig) -> tuple[str, dict[str, Any], list[str]]:
    """The file's path, body and header notes for the project config `loaded`."""
    cfg = loaded.config
    body: dict[str, Any] = {"stages": ["test", "deploy"], "test": {
        "stage": "test", "image": PYTHON_IMAGE,
        "script": [ci.install(None), "pytest", *ci.validate_commands(cfg)]}}
    for cloud, names in ci.environments(cfg).items():
        needs = "test"
        for position, env in enumerate(names):
            body[ci.job_id(env)] = _deploy(cfg, cloud, env, needs, manual=position > 0)
            needs = ci.job_id(env)
    gated = ci.gated(cfg)
    notes = [f"Approval gate: protect the GitLab environment(s) {', '.join(gated)} with "
             "required approvals; their jobs are manual."] if gated else []
    return PATH, body, notes


def _deploy(cfg: ProjectConfig, cloud: str, env: str, needs: str, *,
            manual: bool) -> dict[str, Any]:
    rule = {"if": ON_PUSH[0]["if"].format(branch=cfg.cicd.branch)}
    job: dict[str, Any] = {"stage": "deploy", "needs": [needs],
                           "rules": [{**rule, "when": "manual"} if manual else rule],
                           "environment": {"name": env}}
    return {**job, **{"aws": _aws, "azure": _azure, "gcp": _gcp}[cloud](cfg, env)}


def _aws(cfg: ProjectConfig, env: str) -> dict[str, Any]:
    region = cfg.environments[env].region
    return {"image": NODE_IMAGE, "id_tokens": {"AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}},
            "variables": {"AWS_REGION": region, "AWS_DEFAULT_REGION": region},
            "script": [*VENV, f"{ci.install('aws')} awscli", *AWS_LOGIN,
                       naming.cdk_deploy(CDK, cfg.project, env)]}


def _azure(cfg: ProjectConfig, env: str) -> dict[str, Any]:
    subscription = str(cfg.environments[env].subscription)
    return {"image": PYTHON_IMAGE,
            "id_tokens": {"AZURE_ID_TOKEN": {"aud": "api://AzureADTokenExchange"}},
            "variables": {"ARM_SUBSCRIPTION_ID": subscription},
            "script": [f"{ci.install('azure')} azure-cli", *AZURE_LOGIN,
                       f"az account set --subscription {subscription}", *PULUMI,
                       f"pulumi up -s {env} --yes"]}


def _gcp(cfg: ProjectConfig, env: str) -> dict[str, Any]:
    return {"image": PYTHON_IMAGE, "id_tokens": {"GCP_ID_TOKEN": {
                "aud": "https://iam.googleapis.com/$GCP_WORKLOAD_IDENTITY_PROVIDER"}},
            "variables": {"GOOGLE_CLOUD_PROJECT": str(cfg.environments[env].project)},
            "script": [ci.install("gcp"), *GCP_LOGIN, *PULUMI, f"pulumi up -s {env} --yes"]}
