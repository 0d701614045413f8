"""The CloudFormation stack in deploy/ddb-iceberg.yaml: cfn-lint is clean, and the template keeps the security
properties a user relies on. Each property is a small checker returning a list of problems; each checker is run
on the real template (no problems) and on mutated copies (a problem), so every assertion is shown to be able to fail.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from cfnlint.api import lint_file
from cfnlint.config import ManualArgs
from cfnlint.decode import decode

from ddb_iceberg.definitions import aws_deployment

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "deploy" / "ddb-iceberg.yaml"
LINT_REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]

Template = dict[str, Any]
Statement = dict[str, Any]
KeyPath = list[str | int]

JOB_ROLE = "EmrJobRole"
DAGSTER_POLICY = "DagsterManagedPolicy"
EMR_SERVICE = "emr-serverless.amazonaws.com"
EXPORTER_DYNAMODB_ACTIONS = {
    "dynamodb:ExportTableToPointInTime",
    "dynamodb:DescribeContinuousBackups",
    "dynamodb:DescribeExport",
}
# What Iceberg's GlueCatalog calls for the merge: load, create, commit and list tables (it never drops one).
JOB_GLUE_ACTIONS = {"glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:CreateTable", "glue:UpdateTable"}
OUTPUT_ENV_VARS = {
    "SourceTableArn": "DDB_ICEBERG_TABLE_ARN",
    "ExportBucketName": "DDB_ICEBERG_EXPORT_BUCKET",
    "ExportPrefixOutput": "DDB_ICEBERG_EXPORT_PREFIX",
    "IcebergTable": "DDB_ICEBERG_TABLE",
    "EmrApplicationId": "DDB_ICEBERG_EMR_APPLICATION_ID",
    "EmrJobRoleArn": "DDB_ICEBERG_EMR_ROLE_ARN",
    "CodeLocation": "DDB_ICEBERG_CODE_LOCATION",
    "LogLocation": "DDB_ICEBERG_LOG_LOCATION",
    "EmrLogGroup": "DDB_ICEBERG_EMR_LOG_GROUP",
    "Warehouse": "DDB_ICEBERG_WAREHOUSE",
    "Region": "AWS_REGION",
    "DagsterPolicyArn": "-",
    "AthenaWorkGroupName": "-",
}
OUTPUT_DESCRIPTION = re.compile(r"^(?P<var>DDB_ICEBERG_[A-Z0-9_]+|AWS_REGION|-): \S")


def _arn(service: str) -> str:
    """The regex of `arn:${AWS::Partition}:<service>:${AWS::Region}:${AWS::AccountId}:` in a !Sub template."""
    return rf"arn:\$\{{AWS::Partition\}}:{service}:\$\{{AWS::Region\}}:\$\{{AWS::AccountId\}}:"


# Every resource of an Allow statement that contains a `*` must match one of these, each with its reason.
# The second element, when set, is the only set of actions the wildcard may be granted for.
WILDCARD_ALLOW_LIST: list[tuple[re.Pattern[str], frozenset[str] | None, str]] = [
    (
        re.compile(
            r"^\$\{(ExportBucket|WarehouseBucket|ArtifactsBucket)\.Arn\}/(\$\{ExportPrefix\}|code|emr-logs|warehouse)/\*$"
        ),
        None,
        "objects under one named prefix of one of the stack's buckets",
    ),
    (
        re.compile(rf"^{_arn('logs')}log-group:\$\{{EmrLogGroup\}}:\*$"),
        None,
        "the log streams of the stack's one log group",
    ),
    (
        re.compile(rf"^{_arn('logs')}log-group:\*$"),
        frozenset({"logs:DescribeLogGroups"}),
        "logs:DescribeLogGroups lists log groups and cannot be scoped to one",
    ),
    (
        re.compile(rf"^{_arn('glue')}table/\$\{{GlueDatabase\}}/\*$"),
        None,
        "the tables of the stack's one Glue database",
    ),
    (
        re.compile(rf"^{_arn('dynamodb')}table/\$\{{DynamoDBTableName\}}/export/\*$"),
        frozenset({"dynamodb:DescribeExport"}),
        "the exports of the one source table",
    ),
    (
        re.compile(r"^\$\{EmrApplication\.Arn\}/jobruns/\*$"),
        None,
        "the job runs of the stack's one EMR Serverless application",
    ),
]


# --- reading the template ---------------------------------------------------------------------------------


def load_template(path: Path = TEMPLATE_PATH) -> Template:
    """The template as plain dicts and lists, through cfn-lint's decoder (it understands !Sub, !GetAtt, ...)."""
    template, matches = decode(str(path))
    assert not matches, [str(match) for match in matches]
    assert isinstance(template, dict)
    plain: Template = json.loads(json.dumps(template))
    return plain


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def render(value: Any) -> str:
    """A readable string for a policy value: `${Name}` for Ref, `${Name.Attr}` for GetAtt, Sub's template."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        [(function, argument)] = value.items()
        if function == "Ref":
            return f"${{{argument}}}"
        if function == "Fn::GetAtt":
            return "${" + (argument if isinstance(argument, str) else ".".join(argument)) + "}"
        if function == "Fn::Sub":
            return str(argument if isinstance(argument, str) else argument[0])
        if function == "Fn::Join":
            return str(argument[0]).join(render(part) for part in argument[1])
    return json.dumps(value, sort_keys=True)


def resources_of_type(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body.get("Type") == resource_type}


def properties(template: Template, name: str) -> dict[str, Any]:
    result: dict[str, Any] = template["Resources"][name].get("Properties", {})
    return result


def policy_documents(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every permissions policy (identity and bucket policies; trust policies are checked on their own)."""
    for name, body in template["Resources"].items():
        props = body.get("Properties", {})
        kind = body.get("Type")
        if kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield f"{name}/{policy.get('PolicyName')}", policy["PolicyDocument"]
        elif kind in {"AWS::IAM::ManagedPolicy", "AWS::IAM::Policy", "AWS::S3::BucketPolicy"}:
            yield name, props["PolicyDocument"]


def statements(template: Template) -> Iterator[tuple[str, Statement]]:
    for location, document in policy_documents(template):
        for index, statement in enumerate(as_list(document.get("Statement"))):
            yield f"{location}[{statement.get('Sid', index)}]", statement


def allow_statements(template: Template) -> Iterator[tuple[str, Statement]]:
    for location, statement in statements(template):
        if statement.get("Effect") == "Allow":
            yield location, statement


def actions_of(statement: Statement) -> list[str]:
    return [str(action) for action in as_list(statement.get("Action"))]


def statement_by_sid(template: Template, resource: str, sid: str) -> Statement:
    """A statement of the job role's inline policy or of a managed policy, by Sid (for mutating copies)."""
    props = properties(template, resource)
    documents = [policy["PolicyDocument"] for policy in props.get("Policies", [])] or [props["PolicyDocument"]]
    for document in documents:
        for statement in as_list(document["Statement"]):
            if statement.get("Sid") == sid:
                found: Statement = statement
                return found
    raise KeyError(f"{resource} has no statement {sid}")


# --- checkers: each returns the problems it finds ---------------------------------------------------------


def check_buckets_private(template: Template) -> list[str]:
    """Every bucket: all four public access blocks on, SSE-S3 default encryption, ACLs off, kept on delete."""
    problems = []
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    if not buckets:
        problems.append("the template has no S3 bucket")
    for name, body in buckets.items():
        props = body.get("Properties", {})
        block = props.get("PublicAccessBlockConfiguration", {})
        for flag in ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"):
            if block.get(flag) is not True:
                problems.append(f"{name}: PublicAccessBlockConfiguration.{flag} is not true")
        rules = props.get("BucketEncryption", {}).get("ServerSideEncryptionConfiguration", [])
        algorithms = [rule.get("ServerSideEncryptionByDefault", {}).get("SSEAlgorithm") for rule in rules]
        if algorithms != ["AES256"]:
            problems.append(f"{name}: default encryption is {algorithms}, not SSE-S3 (AES256) as the policies assume")
        ownership = [rule.get("ObjectOwnership") for rule in props.get("OwnershipControls", {}).get("Rules", [])]
        if ownership != ["BucketOwnerEnforced"]:
            problems.append(f"{name}: object ownership is {ownership}, not BucketOwnerEnforced (ACLs disabled)")
        for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
            if body.get(policy) != "Retain":
                problems.append(f"{name}: {policy} is {body.get(policy)!r}, not Retain")
    return problems


def check_buckets_deny_insecure_transport(template: Template) -> list[str]:
    """Every bucket has a bucket policy that denies every S3 action on it and its objects without TLS."""
    problems = []
    policies = resources_of_type(template, "AWS::S3::BucketPolicy").values()
    for name in resources_of_type(template, "AWS::S3::Bucket"):
        wanted = {f"${{{name}.Arn}}", f"${{{name}.Arn}}/*"}
        denied = False
        for policy in policies:
            if policy.get("Properties", {}).get("Bucket") != {"Ref": name}:
                continue
            for statement in as_list(policy["Properties"]["PolicyDocument"].get("Statement")):
                condition = statement.get("Condition", {}).get("Bool", {})
                denied = denied or (
                    statement.get("Effect") == "Deny"
                    and statement.get("Principal") in ("*", {"AWS": "*"})
                    and "s3:*" in actions_of(statement)
                    and str(condition.get("aws:SecureTransport")).lower() == "false"
                    and wanted <= {render(resource) for resource in as_list(statement.get("Resource"))}
                )
        if not denied:
            problems.append(f"{name}: no bucket policy denies s3:* on the bucket and its objects without TLS")
    return problems


def check_emr_application(template: Template) -> list[str]:
    """The EMR Serverless application stops itself when idle, is capped, and logs to CloudWatch and S3."""
    problems = []
    applications = resources_of_type(template, "AWS::EMRServerless::Application")
    if len(applications) != 1:
        problems.append(f"expected one EMR Serverless application, found {sorted(applications)}")
    log_groups = resources_of_type(template, "AWS::Logs::LogGroup")
    for name, body in applications.items():
        props = body.get("Properties", {})
        auto_stop = props.get("AutoStopConfiguration", {})
        if auto_stop.get("Enabled") is not True or "IdleTimeoutMinutes" not in auto_stop:
            problems.append(f"{name}: auto-stop is not on with an idle timeout")
        if props.get("AutoStartConfiguration", {}).get("Enabled") is not True:
            problems.append(f"{name}: auto-start is not on")
        if not {"Cpu", "Memory"} <= set(props.get("MaximumCapacity", {})):
            problems.append(f"{name}: no maximum capacity")
        monitoring = props.get("MonitoringConfiguration", {})
        cloudwatch = monitoring.get("CloudWatchLoggingConfiguration", {})
        if cloudwatch.get("Enabled") is not True:
            problems.append(f"{name}: CloudWatch logging is off (Dagster Pipes reads the job's messages from it)")
        group = cloudwatch.get("LogGroupName")
        if not (isinstance(group, dict) and group.get("Ref") in log_groups):
            problems.append(f"{name}: CloudWatch logs do not go to the stack's log group (with its retention)")
        if "LogUri" not in monitoring.get("S3MonitoringConfiguration", {}):
            problems.append(f"{name}: no S3 log location")
    return problems


def check_no_star_resources(template: Template) -> list[str]:
    """No statement applies to every resource (`Resource: "*"`), nor uses NotResource."""
    problems = []
    for location, statement in statements(template):
        if "NotResource" in statement:
            problems.append(f"{location}: uses NotResource")
        if any(render(resource) == "*" for resource in as_list(statement.get("Resource"))):
            problems.append(f"{location}: Resource is '*'")
    return problems


def check_wildcard_resources(template: Template) -> list[str]:
    """Every `*` in an Allow statement's resource is one of the justified cases of WILDCARD_ALLOW_LIST."""
    problems = []
    for location, statement in allow_statements(template):
        actions = frozenset(actions_of(statement))
        for resource in map(render, as_list(statement.get("Resource"))):
            if "*" not in resource:
                continue
            allowed = any(
                pattern.match(resource) and (only is None or actions <= only)
                for pattern, only, _reason in WILDCARD_ALLOW_LIST
            )
            if not allowed:
                problems.append(f"{location}: wildcard resource {resource!r} for {sorted(actions)} is not allowed")
    return problems


def check_no_wildcard_actions(template: Template) -> list[str]:
    """No Allow statement grants a wildcard action (`*`, `s3:*`, `glue:Get*`, ...) or uses NotAction."""
    problems = []
    for location, statement in allow_statements(template):
        if "NotAction" in statement:
            problems.append(f"{location}: Allow with NotAction")
        problems.extend(f"{location}: wildcard action {action!r}" for action in actions_of(statement) if "*" in action)
    return problems


def check_pass_role(template: Template) -> list[str]:
    """iam:PassRole is granted once: on the job role only, and only to EMR Serverless."""
    problems = []
    passing = [(location, st) for location, st in allow_statements(template) if "iam:PassRole" in actions_of(st)]
    if not passing:
        problems.append("no statement lets Dagster pass the job role")
    for location, statement in passing:
        resources = as_list(statement.get("Resource"))
        if resources != [{"Fn::GetAtt": [JOB_ROLE, "Arn"]}]:
            problems.append(f"{location}: iam:PassRole on {[render(r) for r in resources]}, not only the job role")
        passed_to = statement.get("Condition", {}).get("StringEquals", {}).get("iam:PassedToService")
        if passed_to != EMR_SERVICE:
            problems.append(f"{location}: iam:PassRole is not limited to iam:PassedToService={EMR_SERVICE}")
    return problems


def check_job_role_trust(template: Template) -> list[str]:
    """The job role can be assumed by EMR Serverless only, for this account."""
    problems = []
    document = properties(template, JOB_ROLE).get("AssumeRolePolicyDocument", {})
    trust = as_list(document.get("Statement"))
    if not trust:
        problems.append(f"{JOB_ROLE}: no trust policy")
    for index, statement in enumerate(trust):
        if statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if principal != {"Service": EMR_SERVICE} and principal != {"Service": [EMR_SERVICE]}:
            problems.append(f"{JOB_ROLE} trust[{index}]: principal {principal} is not only {EMR_SERVICE}")
        if actions_of(statement) != ["sts:AssumeRole"]:
            problems.append(f"{JOB_ROLE} trust[{index}]: actions {actions_of(statement)}, not only sts:AssumeRole")
        account = statement.get("Condition", {}).get("StringEquals", {}).get("aws:SourceAccount")
        if account != {"Ref": "AWS::AccountId"}:
            problems.append(f"{JOB_ROLE} trust[{index}]: no aws:SourceAccount condition on this account")
    return problems


def check_dynamodb_actions(template: Template) -> list[str]:
    """The Dagster policy grants exactly the DynamoDB actions the exporter calls; nothing else grants any."""
    problems = []
    granted: dict[str, set[str]] = {}
    for location, statement in allow_statements(template):
        owner = location.split("/")[0].split("[")[0]
        granted.setdefault(owner, set()).update(a for a in actions_of(statement) if a.startswith("dynamodb:"))
    dagster = granted.pop(DAGSTER_POLICY, set())
    if dagster != EXPORTER_DYNAMODB_ACTIONS:
        problems.append(
            f"{DAGSTER_POLICY}: DynamoDB actions {sorted(dagster)}, expected {sorted(EXPORTER_DYNAMODB_ACTIONS)}"
        )
    problems.extend(f"{owner}: DynamoDB actions {sorted(actions)}" for owner, actions in granted.items() if actions)
    return problems


def check_glue_actions(template: Template) -> list[str]:
    """The job role may do to Glue tables only what the merge does; Dagster only reads."""
    problems = []
    for location, statement in allow_statements(template):
        glue = {a for a in actions_of(statement) if a.startswith("glue:")}
        allowed = (
            JOB_GLUE_ACTIONS
            if location.startswith(JOB_ROLE)
            else {"glue:GetDatabase", "glue:GetTable", "glue:GetTables"}
        )
        if glue - allowed:
            problems.append(f"{location}: Glue actions {sorted(glue - allowed)} that no code path needs")
    return problems


def check_export_listing_is_prefixed(template: Template) -> list[str]:
    """Whoever may list the export bucket may list only the export prefix (it may hold other data)."""
    problems = []
    for location, statement in allow_statements(template):
        on_exports = {"Fn::GetAtt": ["ExportBucket", "Arn"]} in as_list(statement.get("Resource"))
        if on_exports and "s3:ListBucket" in actions_of(statement):
            prefixes = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
            if prefixes != [{"Ref": "ExportPrefix"}, {"Fn::Sub": "${ExportPrefix}/*"}]:
                problems.append(f"{location}: s3:ListBucket on the export bucket without the export prefix condition")
    return problems


def check_output_descriptions(template: Template) -> list[str]:
    """Every output's description starts with the environment variable it feeds (or `-`), then ': '."""
    problems = []
    for name, output in template.get("Outputs", {}).items():
        description = str(output.get("Description", ""))
        match = OUTPUT_DESCRIPTION.match(description)
        if match is None:
            problems.append(f"output {name}: description {description!r} does not start with '<ENV_VAR>: ' or '-: '")
        elif name in OUTPUT_ENV_VARS and match["var"] != OUTPUT_ENV_VARS[name]:
            problems.append(f"output {name}: feeds {match['var']}, expected {OUTPUT_ENV_VARS[name]}")
    return problems


CHECKERS: list[Callable[[Template], list[str]]] = [
    check_buckets_private,
    check_buckets_deny_insecure_transport,
    check_emr_application,
    check_no_star_resources,
    check_wildcard_resources,
    check_no_wildcard_actions,
    check_pass_role,
    check_job_role_trust,
    check_dynamodb_actions,
    check_glue_actions,
    check_export_listing_is_prefixed,
    check_output_descriptions,
]


# --- tests --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> Template:
    return load_template()


def _lint(path: Path) -> list[str]:
    matches = lint_file(path, config=ManualArgs(regions=LINT_REGIONS, include_checks=["I"]))
    return [f"{match.rule.id} ({match.rule.severity}) line {match.linenumber}: {match.message}" for match in matches]


def test_cfn_lint_reports_nothing() -> None:
    """No error, warning or informational finding, in a few Regions that have EMR Serverless."""
    assert _lint(TEMPLATE_PATH) == []


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    """The lint test above can fail: a property the resource type lacks is reported."""
    text = TEMPLATE_PATH.read_text()
    assert "      Type: SPARK\n" in text
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace("      Type: SPARK\n", "      Type: SPARK\n      NotAProperty: true\n"))
    assert any("NotAProperty" in finding for finding in _lint(broken))


@pytest.mark.parametrize("checker", CHECKERS, ids=lambda checker: checker.__name__)
def test_the_template_passes(template: Template, checker: Callable[[Template], list[str]]) -> None:
    assert checker(template) == []


def test_the_outputs_are_exactly_the_documented_ones(template: Template) -> None:
    assert set(template["Outputs"]) == set(OUTPUT_ENV_VARS)


def test_the_outputs_feed_every_setting_the_aws_deployment_reads() -> None:
    """`DDB_ICEBERG_ENV=aws` resolves these `dg.EnvVar`s when a run starts; the stack must provide each one."""
    needed = {
        value.env_var_name
        for resource in aws_deployment({}).resources.values()
        if isinstance(resource, dg.ConfigurableResource)
        for field in type(resource).model_fields
        if isinstance(value := getattr(resource, field), dg.EnvVar)
    }
    assert len(needed) >= 9
    assert needed - set(OUTPUT_ENV_VARS.values()) == set()


def test_the_wildcard_allow_list_is_all_used(template: Template) -> None:
    """Every allowed wildcard is needed by the template: an unused entry would only widen what may slip in."""
    resources = [render(r) for _, statement in allow_statements(template) for r in as_list(statement.get("Resource"))]
    unused = [reason for pattern, _, reason in WILDCARD_ALLOW_LIST if not any(map(pattern.match, resources))]
    assert unused == []


# Mutations of a copy of the template, each with the checker that must object and a fragment of its complaint.


def _set(path: KeyPath, value: Any) -> Callable[[Template], None]:
    def mutate(template: Template) -> None:
        node: Any = template
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


def _delete(path: KeyPath) -> Callable[[Template], None]:
    def mutate(template: Template) -> None:
        node: Any = template
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return mutate


def _edit_statement(resource: str, sid: str, edit: Callable[[Statement], None]) -> Callable[[Template], None]:
    def mutate(template: Template) -> None:
        edit(statement_by_sid(template, resource, sid))

    return mutate


def _add_statement(resource: str, statement: Statement) -> Callable[[Template], None]:
    def mutate(template: Template) -> None:
        props = properties(template, resource)
        document = props["Policies"][0]["PolicyDocument"] if "Policies" in props else props["PolicyDocument"]
        document["Statement"].append(statement)

    return mutate


def _append_action(action: str) -> Callable[[Statement], None]:
    def edit(statement: Statement) -> None:
        statement["Action"] = [*as_list(statement["Action"]), action]

    return edit


def _append_resource(resource: Any) -> Callable[[Statement], None]:
    def edit(statement: Statement) -> None:
        statement["Resource"] = [*as_list(statement["Resource"]), resource]

    return edit


def _drop_action(action: str) -> Callable[[Statement], None]:
    def edit(statement: Statement) -> None:
        statement["Action"] = [a for a in as_list(statement["Action"]) if a != action]

    return edit


_BUCKET: KeyPath = ["Resources", "WarehouseBucket"]
_ENCRYPTION: KeyPath = [*_BUCKET, "Properties", "BucketEncryption", "ServerSideEncryptionConfiguration", 0]
_APP: KeyPath = ["Resources", "EmrApplication", "Properties"]
_TRUST: KeyPath = ["Resources", JOB_ROLE, "Properties", "AssumeRolePolicyDocument", "Statement", 0]
_TLS: KeyPath = ["Resources", "ArtifactsBucketPolicy", "Properties", "PolicyDocument", "Statement", 0]

MUTATIONS = [
    pytest.param(
        _delete([*_BUCKET, "Properties", "PublicAccessBlockConfiguration", "BlockPublicPolicy"]),
        check_buckets_private,
        "BlockPublicPolicy is not true",
        id="public-access-flag-removed",
    ),
    pytest.param(
        _set([*_BUCKET, "Properties", "PublicAccessBlockConfiguration", "RestrictPublicBuckets"], False),
        check_buckets_private,
        "RestrictPublicBuckets is not true",
        id="public-access-flag-false",
    ),
    pytest.param(
        _delete(["Resources", "ExportBucket", "Properties", "BucketEncryption"]),
        check_buckets_private,
        "ExportBucket: default encryption",
        id="bucket-not-encrypted",
    ),
    pytest.param(
        _set(
            [*_ENCRYPTION, "ServerSideEncryptionByDefault", "SSEAlgorithm"],
            "aws:kms",
        ),
        check_buckets_private,
        "not SSE-S3",
        id="bucket-kms-without-kms-permissions",
    ),
    pytest.param(
        _set([*_BUCKET, "Properties", "OwnershipControls", "Rules", 0, "ObjectOwnership"], "ObjectWriter"),
        check_buckets_private,
        "not BucketOwnerEnforced",
        id="bucket-acls-enabled",
    ),
    pytest.param(
        _delete(["Resources", "ExportBucket", "DeletionPolicy"]),
        check_buckets_private,
        "ExportBucket: DeletionPolicy",
        id="data-bucket-deleted-with-stack",
    ),
    pytest.param(
        _set(["Resources", "ArtifactsBucket", "UpdateReplacePolicy"], "Delete"),
        check_buckets_private,
        "ArtifactsBucket: UpdateReplacePolicy",
        id="bucket-replaced-and-deleted",
    ),
    pytest.param(
        _delete(["Resources", "ExportBucketPolicy"]),
        check_buckets_deny_insecure_transport,
        "ExportBucket: no bucket policy",
        id="bucket-policy-removed",
    ),
    pytest.param(
        _set([*_TLS, "Condition", "Bool", "aws:SecureTransport"], "true"),
        check_buckets_deny_insecure_transport,
        "ArtifactsBucket: no bucket policy",
        id="tls-condition-inverted",
    ),
    pytest.param(
        _set([*_TLS, "Resource"], [{"Fn::GetAtt": ["ArtifactsBucket", "Arn"]}]),
        check_buckets_deny_insecure_transport,
        "ArtifactsBucket: no bucket policy",
        id="tls-deny-misses-objects",
    ),
    pytest.param(
        _set([*_APP, "AutoStopConfiguration", "Enabled"], False),
        check_emr_application,
        "auto-stop",
        id="emr-auto-stop-off",
    ),
    pytest.param(
        _set([*_APP, "AutoStartConfiguration", "Enabled"], False),
        check_emr_application,
        "auto-start",
        id="emr-auto-start-off",
    ),
    pytest.param(
        _delete([*_APP, "MaximumCapacity"]),
        check_emr_application,
        "maximum capacity",
        id="emr-uncapped",
    ),
    pytest.param(
        _delete([*_APP, "MonitoringConfiguration", "S3MonitoringConfiguration"]),
        check_emr_application,
        "S3 log location",
        id="emr-no-s3-logs",
    ),
    pytest.param(
        _set([*_APP, "MonitoringConfiguration", "CloudWatchLoggingConfiguration", "Enabled"], False),
        check_emr_application,
        "CloudWatch logging is off",
        id="emr-cloudwatch-logging-off",
    ),
    pytest.param(
        _delete([*_APP, "MonitoringConfiguration", "CloudWatchLoggingConfiguration", "LogGroupName"]),
        check_emr_application,
        "stack's log group",
        id="emr-logs-to-default-group",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "ReadExports", _append_resource("*")),
        check_no_star_resources,
        "ReadExports]: Resource is '*'",
        id="job-role-resource-star",
    ),
    pytest.param(
        _add_statement(DAGSTER_POLICY, {"Effect": "Allow", "Action": "glue:GetTable", "Resource": "*"}),
        check_no_star_resources,
        "Resource is '*'",
        id="dagster-resource-star",
    ),
    pytest.param(
        _add_statement(DAGSTER_POLICY, {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:x"}),
        check_no_star_resources,
        "NotResource",
        id="not-resource",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "ReadWriteWarehouseObjects", _append_action("s3:*")),
        check_no_wildcard_actions,
        "'s3:*'",
        id="s3-star-action",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "ReadCatalog", _append_action("glue:*")),
        check_no_wildcard_actions,
        "'glue:*'",
        id="glue-star-action",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "ExportTable", _append_action("dynamodb:*")),
        check_no_wildcard_actions,
        "'dynamodb:*'",
        id="dynamodb-star-action",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "ReadCatalog", _append_action("glue:Get*")),
        check_no_wildcard_actions,
        "'glue:Get*'",
        id="partial-wildcard-action",
    ),
    pytest.param(
        _add_statement(DAGSTER_POLICY, {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:x"}),
        check_no_wildcard_actions,
        "NotAction",
        id="not-action",
    ),
    pytest.param(
        _edit_statement(
            JOB_ROLE, "ReadWriteWarehouseObjects", _append_resource({"Fn::Sub": "${WarehouseBucket.Arn}/*"})
        ),
        check_wildcard_resources,
        "'${WarehouseBucket.Arn}/*'",
        id="whole-bucket-objects",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "DescribeLogGroups", _append_action("logs:PutLogEvents")),
        check_wildcard_resources,
        "log-group:*",
        id="every-log-group-for-writing",
    ),
    pytest.param(
        _edit_statement(
            JOB_ROLE,
            "GlueCatalogTables",
            _append_resource({"Fn::Sub": "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}:table/*"}),
        ),
        check_wildcard_resources,
        ":table/*'",
        id="tables-of-every-database",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "PassJobRole", _delete(["Condition"])),
        check_pass_role,
        "iam:PassedToService",
        id="pass-role-to-any-service",
    ),
    pytest.param(
        _edit_statement(
            DAGSTER_POLICY,
            "PassJobRole",
            _set(["Resource"], {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/*"}),
        ),
        check_pass_role,
        "not only the job role",
        id="pass-any-role",
    ),
    pytest.param(
        _add_statement(
            JOB_ROLE, {"Effect": "Allow", "Action": "iam:PassRole", "Resource": {"Fn::GetAtt": ["X", "Arn"]}}
        ),
        check_pass_role,
        "not only the job role",
        id="second-pass-role",
    ),
    pytest.param(
        _set([*_TRUST, "Principal", "Service"], [EMR_SERVICE, "ec2.amazonaws.com"]),
        check_job_role_trust,
        "is not only",
        id="trust-another-service",
    ),
    pytest.param(
        _set([*_TRUST, "Principal"], {"AWS": "*"}),
        check_job_role_trust,
        "is not only",
        id="trust-anyone",
    ),
    pytest.param(
        _set([*_TRUST, "Action"], ["sts:AssumeRole", "sts:TagSession"]),
        check_job_role_trust,
        "not only sts:AssumeRole",
        id="trust-more-than-assume-role",
    ),
    pytest.param(
        _delete([*_TRUST, "Condition", "StringEquals"]),
        check_job_role_trust,
        "aws:SourceAccount",
        id="trust-without-source-account",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "ExportTable", _append_action("dynamodb:Scan")),
        check_dynamodb_actions,
        "dynamodb:Scan",
        id="exporter-can-scan",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "DescribeExports", _drop_action("dynamodb:DescribeExport")),
        check_dynamodb_actions,
        "expected",
        id="exporter-cannot-wait",
    ),
    pytest.param(
        _add_statement(
            JOB_ROLE,
            {"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": {"Fn::GetAtt": ["Table", "Arn"]}},
        ),
        check_dynamodb_actions,
        f"{JOB_ROLE}: DynamoDB actions",
        id="job-role-reads-dynamodb",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "GlueCatalogTables", _append_action("glue:DeleteTable")),
        check_glue_actions,
        "glue:DeleteTable",
        id="job-role-drops-tables",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "ListExports", lambda statement: statement.pop("Condition")),
        check_export_listing_is_prefixed,
        f"{DAGSTER_POLICY}",
        id="dagster-lists-the-whole-export-bucket",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "ListExports", lambda statement: statement.pop("Condition")),
        check_export_listing_is_prefixed,
        f"{JOB_ROLE}",
        id="job-role-lists-the-whole-export-bucket",
    ),
    pytest.param(
        _set(["Outputs", "Warehouse", "Description"], "S3 warehouse of the Glue catalog's Iceberg tables."),
        check_output_descriptions,
        "output Warehouse",
        id="output-without-env-var",
    ),
    pytest.param(
        _set(["Outputs", "Region", "Description"], "AWS_DEFAULT_REGION: the Region."),
        check_output_descriptions,
        "output Region",
        id="output-with-foreign-env-var",
    ),
    pytest.param(
        _set(["Outputs", "EmrJobRoleArn", "Description"], "DDB_ICEBERG_EMR_APPLICATION_ID: the role."),
        check_output_descriptions,
        "expected DDB_ICEBERG_EMR_ROLE_ARN",
        id="output-feeds-the-wrong-env-var",
    ),
]


@pytest.mark.parametrize(("mutate", "checker", "expected"), MUTATIONS)
def test_a_weakened_template_is_reported(
    template: Template,
    mutate: Callable[[Template], None],
    checker: Callable[[Template], list[str]],
    expected: str,
) -> None:
    weakened = copy.deepcopy(template)
    mutate(weakened)
    problems = checker(weakened)
    assert any(expected in problem for problem in problems), problems
    assert checker(template) == []  # the fixture itself was not touched
