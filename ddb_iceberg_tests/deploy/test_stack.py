"""The CloudFormation stack in deploy/ddb-iceberg.yaml: cfn-lint is clean, and the template keeps the security
properties a user relies on. Each property is a small checker returning a list of problems; each checker is run
on the real template (no problems) and on mutated copies (a problem), so every assertion is shown to be able to fail.

Beyond the shape of the policies, the template is resolved as CloudFormation would deploy it (its Conditions for
given parameters, Refs and ARNs made concrete) and a small IAM evaluator asks whether each call a real run makes
is allowed, and whether calls no code path makes are refused. The optional Lake Formation grants are resolved the
same way, for each setting of their parameters.

checkov, the IaC scanner, must report no failed check: the checks the stack does not follow are skipped on their
resources in the template, each with its reason, and the list of them is pinned here.
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from cfnlint.api import lint_file
from cfnlint.config import ManualArgs
from cfnlint.decode import decode

from ddb_iceberg.definitions import aws_deployment
from ddb_iceberg.resources.emr_serverless import EmrServerlessMergeRunner

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "deploy" / "ddb-iceberg.yaml"
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
    "dynamodb:ListExports",
}
# What Iceberg's GlueCatalog calls for the merge (load, create, commit and list tables; it never drops one), and what
# the Glue-backed Hive metastore of Spark's session catalog calls (the `default` database, the database list).
JOB_GLUE_ACTIONS = {
    "glue:GetDatabase",
    "glue:GetDatabases",
    "glue:CreateDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:CreateTable",
    "glue:UpdateTable",
}
# PyIceberg on the Dagster side only reads.
DAGSTER_GLUE_ACTIONS = {"glue:GetDatabase", "glue:GetTable"}
# Lake Formation's side of the same calls, when the account uses its permissions (LakeFormationGrants=true).
# GetDatabase needs DESCRIBE on the database, CreateTable CREATE_TABLE; nothing alters the database.
JOB_LAKE_FORMATION_DATABASE = frozenset({"CREATE_TABLE", "DESCRIBE"})
# GetTable(s) DESCRIBE, UpdateTable ALTER; SELECT, INSERT and DELETE are what the job does to the rows.
JOB_LAKE_FORMATION_TABLES = frozenset({"ALTER", "DELETE", "DESCRIBE", "INSERT", "SELECT"})
# CreateTable (and UpdateTable) of a table located in the registered warehouse location.
JOB_LAKE_FORMATION_LOCATION = frozenset({"DATA_LOCATION_ACCESS"})
DAGSTER_LAKE_FORMATION_DATABASE = frozenset({"DESCRIBE"})
DAGSTER_LAKE_FORMATION_TABLES = frozenset({"DESCRIBE", "SELECT"})
# Where DynamoDB writes an export under the prefix (<prefix>/AWSDynamoDB/<export id>/...): the only objects export
# housekeeping may delete, and the only principal that may. Housekeeping runs on the Dagster side (the upkeep asset
# and `ddb-iceberg maintain --source`, boto3's DeleteObjects); the Spark job never deletes an export.
EXPORT_DELETE_RESOURCE = "${ExportBucket.Arn}/${ExportPrefix}/AWSDynamoDB/*"
EXPORT_HOUSEKEEPER = DAGSTER_POLICY
# Actions IAM authorizes on `Resource: "*"` only (no resource type in the Service Authorization Reference).
STAR_ONLY_ACTIONS = frozenset({"dynamodb:ListExports"})
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
        re.compile(rf"^{re.escape(EXPORT_DELETE_RESOURCE)}$"),
        frozenset({"s3:DeleteObject"}),
        "export housekeeping deletes the exports DynamoDB wrote under the export prefix",
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
    (
        re.compile(r"^\*$"),
        STAR_ONLY_ACTIONS,
        "dynamodb:ListExports has no resource-level permission (the exporter finds existing exports with it)",
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


def conditional_statements(entry: Any) -> Iterator[tuple[str, Statement]]:
    """The statements a Statement-list entry can deploy: itself, or both branches of an `Fn::If` (conservative:
    every statement some choice of parameters deploys must pass the checks), with the condition in the label."""
    if isinstance(entry, dict) and set(entry) == {"Fn::If"}:
        condition, when_true, when_false = entry["Fn::If"]
        for label, branch in ((f"if {condition}", when_true), (f"unless {condition}", when_false)):
            for inner_label, statement in conditional_statements(branch):
                yield " ".join(filter(None, [label, inner_label])), statement
    elif isinstance(entry, dict) and entry != {"Ref": "AWS::NoValue"}:
        yield "", entry


def statements(template: Template) -> Iterator[tuple[str, Statement]]:
    for location, document in policy_documents(template):
        for index, entry in enumerate(as_list(document.get("Statement"))):
            for condition, statement in conditional_statements(entry):
                label = f"{statement.get('Sid', index)}" + (f" ({condition})" if condition else "")
                yield f"{location}[{label}]", statement


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
        for entry in as_list(document["Statement"]):
            for _, statement in conditional_statements(entry):
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
    """No statement applies to every resource (`Resource: "*"`), nor uses NotResource. The exception: an Allow of
    actions IAM authorizes on "*" only (STAR_ONLY_ACTIONS), alone in its statement and held to the stack's Region."""
    problems = []
    for location, statement in statements(template):
        if "NotResource" in statement:
            problems.append(f"{location}: uses NotResource")
        if not any(render(resource) == "*" for resource in as_list(statement.get("Resource"))):
            continue
        actions = set(actions_of(statement))
        if statement.get("Effect") != "Allow" or not actions or not actions <= STAR_ONLY_ACTIONS:
            problems.append(f"{location}: Resource is '*' for {sorted(actions - STAR_ONLY_ACTIONS) or sorted(actions)}")
        region = statement.get("Condition", {}).get("StringEquals", {}).get("aws:RequestedRegion")
        if region != {"Ref": "AWS::Region"}:
            problems.append(f"{location}: Resource is '*' without an aws:RequestedRegion condition on the stack's")
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
        allowed = JOB_GLUE_ACTIONS if location.startswith(JOB_ROLE) else DAGSTER_GLUE_ACTIONS
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


_BUCKET_OF_OBJECTS = re.compile(r"^\$\{(?P<bucket>\w+)\.Arn\}/")


def _whole_bucket(rule: dict[str, Any]) -> bool:
    return rule.get("Status") == "Enabled" and "Prefix" not in rule and "Filter" not in rule


def check_deletable_buckets_are_versioned(template: Template) -> list[str]:
    """Every bucket a role may delete objects from is versioned, the warehouse bucket included, so a wrong delete can
    be undone; every versioned bucket expires noncurrent versions and the delete markers they leave, and still aborts
    incomplete multipart uploads, all over the whole bucket, so what versioning keeps stays bounded."""
    problems = []
    buckets = resources_of_type(template, "AWS::S3::Bucket")
    deleted_from: dict[str, set[str]] = {"WarehouseBucket": set()}
    for location, statement in allow_statements(template):
        if any(matches(action, "s3:DeleteObject", ignore_case=True) for action in actions_of(statement)):
            for resource in map(render, as_list(statement.get("Resource"))):
                if match := _BUCKET_OF_OBJECTS.match(resource):
                    deleted_from.setdefault(match["bucket"], set()).add(location)
    for name, deleters in deleted_from.items():
        status = buckets.get(name, {}).get("Properties", {}).get("VersioningConfiguration", {}).get("Status")
        if status != "Enabled":
            who = f"; {', '.join(sorted(deleters))} may delete from it" if deleters else ""
            problems.append(f"{name}: versioning is {status!r}, not Enabled{who}")
    for name, body in buckets.items():
        props = body.get("Properties", {})
        if props.get("VersioningConfiguration", {}).get("Status") != "Enabled":
            continue
        rules = [rule for rule in props.get("LifecycleConfiguration", {}).get("Rules", []) if _whole_bucket(rule)]
        if not any("NoncurrentDays" in rule.get("NoncurrentVersionExpiration", {}) for rule in rules):
            problems.append(f"{name}: versioned, but no rule expires noncurrent versions over the whole bucket")
        if not any(rule.get("ExpiredObjectDeleteMarker") is True for rule in rules):
            problems.append(f"{name}: versioned, but no rule removes expired delete markers over the whole bucket")
        if not any("DaysAfterInitiation" in rule.get("AbortIncompleteMultipartUpload", {}) for rule in rules):
            problems.append(f"{name}: no rule aborts incomplete multipart uploads over the whole bucket")
    return problems


def check_object_deletes_are_limited(template: Template) -> list[str]:
    """Only EXPORT_HOUSEKEEPER may delete exports (housekeeping of the applied ones), and only in DynamoDB's own
    folder under the export prefix; nobody may delete an object version, which would make any delete final."""
    problems = []
    for location, statement in allow_statements(template):
        for action in actions_of(statement):
            if matches(action, "s3:DeleteObjectVersion", ignore_case=True):
                problems.append(f"{location}: {action!r} allows s3:DeleteObjectVersion (deletes past versioning)")
            if not matches(action, "s3:DeleteObject", ignore_case=True):
                continue
            for resource in map(render, as_list(statement.get("Resource"))):
                if not resource.startswith("${ExportBucket.Arn}"):
                    continue
                if location.split("/")[0].split("[")[0] != EXPORT_HOUSEKEEPER:
                    problems.append(f"{location}: may delete exports ({resource!r}); only {EXPORT_HOUSEKEEPER} does")
                elif resource != EXPORT_DELETE_RESOURCE:
                    problems.append(f"{location}: deletes exports on {resource!r}, not only {EXPORT_DELETE_RESOURCE!r}")
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


# --- the template as deployed, and what its roles may do -------------------------------------------------------

REGION = "eu-west-1"
ACCOUNT = "123456789012"
STACK = "ddb-iceberg"
# Parameters without a default, as a deployment passes them.
REQUIRED_PARAMETERS = {"DynamoDBTableName": "orders-source"}
NO_VALUE = {"Ref": "AWS::NoValue"}
# What Ref and Fn::GetAtt return for the stack's resources: made-up names in the formats AWS gives them.
EXPORT_BUCKET = f"{STACK}-exportbucket-1a2b3c"
WAREHOUSE_BUCKET = f"{STACK}-warehousebucket-4d5e6f"
ARTIFACTS_BUCKET = f"{STACK}-artifactsbucket-7a8b9c"
APPLICATION_ID = "00fexampleapp0001"
APPLICATION_ARN = f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{APPLICATION_ID}"
OTHER_APPLICATION_ARN = f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/00fsomeoneelses01"
JOB_RUN_ARN = f"{APPLICATION_ARN}/jobruns/00fexamplerun0001"
JOB_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-EmrJobRole-AB12CD34"
LOG_GROUP = f"/aws/emr-serverless/ddb-iceberg-{STACK}"
# The role a Dagster deployment runs as, outside the stack (parameter DagsterRoleArn).
DAGSTER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/dagster-code-location"
EXPORT_ID = "01700000000000-abcd1234"


@dataclass
class Deployed:
    """A template as CloudFormation deploys it for some parameters: each `Fn::If` decided, `AWS::NoValue` gone, and
    the resources and outputs whose Condition fails left out."""

    template: Template
    parameters: dict[str, str]

    def names(self) -> dict[str, str]:
        """What `${Name}` and `${Name.Attribute}` stand for in this deployment."""
        bucket = {
            "ExportBucket": EXPORT_BUCKET,
            "WarehouseBucket": WAREHOUSE_BUCKET,
            "ArtifactsBucket": ARTIFACTS_BUCKET,
        }
        return {
            "AWS::Partition": "aws",
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::StackName": STACK,
            **self.parameters,
            **bucket,
            **{f"{name}.Arn": f"arn:aws:s3:::{value}" for name, value in bucket.items()},
            "GlueDatabase": self.parameters["GlueDatabaseName"],
            "EmrLogGroup": LOG_GROUP,
            "EmrApplication.Arn": APPLICATION_ARN,
            "EmrApplication.ApplicationId": APPLICATION_ID,
            "EmrJobRole.Arn": JOB_ROLE_ARN,
        }


def deploy(template: Template, **overrides: str) -> Deployed:
    """Resolve the template's Conditions for its parameter defaults, REQUIRED_PARAMETERS and `overrides`."""
    declared = template.get("Parameters", {})
    assert set(overrides) <= set(declared), f"no such parameters: {set(overrides) - set(declared)}"
    defaults = {name: str(spec["Default"]) for name, spec in declared.items() if "Default" in spec}
    parameters = defaults | REQUIRED_PARAMETERS | overrides
    conditions = template.get("Conditions", {})

    def value(node: Any) -> str:
        return parameters[node["Ref"]] if isinstance(node, dict) and set(node) == {"Ref"} else str(node)

    def holds(node: Any) -> bool:
        [(function, argument)] = node.items()
        if function == "Fn::Equals":
            return value(argument[0]) == value(argument[1])
        if function == "Fn::Not":
            return not holds(argument[0])
        if function == "Fn::And":
            return all(map(holds, argument))
        if function == "Fn::Or":
            return any(map(holds, argument))
        if function == "Condition":
            return holds(conditions[argument])
        raise ValueError(f"teach deploy() the condition function {function}")

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if set(node) == {"Fn::If"}:
                name, when_true, when_false = node["Fn::If"]
                return walk(when_true if holds(conditions[name]) else when_false)
            return {
                key: child for key, child in ((key, walk(child)) for key, child in node.items()) if child != NO_VALUE
            }
        if isinstance(node, list):
            return [child for child in map(walk, node) if child != NO_VALUE]
        return node

    deployed = walk(template)
    # A resource or output whose Condition does not hold is not created.
    for section in set(deployed) & {"Resources", "Outputs"}:
        deployed[section] = {
            name: body
            for name, body in deployed[section].items()
            if "Condition" not in body or holds(conditions[body["Condition"]])
        }
    return Deployed(deployed, parameters)


def concrete(value: Any, names: dict[str, str]) -> str:
    """A policy value as AWS sees it once deployed (a KeyError names anything `names` lacks)."""
    if isinstance(value, str):
        return value
    [(function, argument)] = value.items()
    if function == "Ref":
        return names[argument]
    if function == "Fn::GetAtt":
        return names[argument if isinstance(argument, str) else ".".join(argument)]
    if function == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])
        local = names | {key: concrete(inner, names) for key, inner in variables.items()}
        return re.sub(r"\$\{([^}!]+)\}", lambda match: local[match.group(1)], text)
    if function == "Fn::Join":
        return str(argument[0]).join(concrete(part, names) for part in argument[1])
    raise ValueError(f"teach concrete() the function {function}")


def matches(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcards: `*` any run of characters (`/` and `:` too), `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.IGNORECASE if ignore_case else 0) is not None


CONDITION_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: expected == actual,
    "StringLike": matches,
    "ArnEquals": lambda expected, actual: expected == actual,
    "ArnLike": matches,
    "Bool": lambda expected, actual: expected.lower() == actual.lower(),
}


@dataclass
class Call:
    """One AWS request as IAM authorizes it: an action on each of its resources, with its request context."""

    why: str
    action: str
    resources: tuple[str, ...]
    context: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.action} on {', '.join(self.resources)} ({self.why})"


def identity_statements(deployed: Deployed, principal: str) -> list[Statement]:
    """The statements of a role's inline policies, or of a managed policy."""
    props = properties(deployed.template, principal)
    documents = [policy["PolicyDocument"] for policy in props.get("Policies", [])] or [props["PolicyDocument"]]
    return [statement for document in documents for statement in as_list(document.get("Statement"))]


def allowed(deployed: Deployed, principal: str, call: Call) -> bool:
    """IAM's verdict on `call` from the principal's own policies: an Allow matches for every resource (action,
    resource, every condition; a condition key the request lacks fails), and no Deny matches."""
    names = deployed.names()

    def applies(statement: Statement, resource: str) -> bool:
        if "NotAction" in statement or "NotResource" in statement:
            raise ValueError("NotAction and NotResource are refused by check_no_* and not evaluated here")
        if not any(matches(action, call.action, ignore_case=True) for action in actions_of(statement)):
            return False
        if not any(matches(concrete(r, names), resource) for r in as_list(statement.get("Resource"))):
            return False
        for operator, block in statement.get("Condition", {}).items():
            test = CONDITION_OPERATORS[operator]  # a KeyError: teach the evaluator that operator first
            for key, expected in block.items():
                actual = call.context.get(key)
                if actual is None or not any(test(concrete(e, names), actual) for e in as_list(expected)):
                    return False
        return True

    statements_ = identity_statements(deployed, principal)
    for resource in call.resources:
        relevant = [statement for statement in statements_ if applies(statement, resource)]
        if not relevant or any(statement["Effect"] == "Deny" for statement in relevant):
            return False
    return True


def _glue(resource: str) -> str:
    return f"arn:aws:glue:{REGION}:{ACCOUNT}:{resource}"


def _s3(bucket: str, key: str = "") -> str:
    return f"arn:aws:s3:::{bucket}" + (f"/{key}" if key else "")


def _log_stream(stream: str) -> str:
    return f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:log-stream:{stream}"


def job_run_calls(parameters: dict[str, str]) -> list[Call]:
    """What the merge job calls as its role on EMR Serverless: Spark's Glue-backed session catalog starting,
    Iceberg's GlueCatalog and S3FileIO, reading exports and its code, EMR writing its logs."""
    db, table, prefix = parameters["GlueDatabaseName"], parameters["IcebergTableName"], parameters["ExportPrefix"]
    catalog, database, default = _glue("catalog"), _glue(f"database/{db}"), _glue("database/default")
    table_arn = _glue(f"table/{db}/{table}")
    data_file = _s3(WAREHOUSE_BUCKET, f"warehouse/{db}.db/{table}/data/00000-0-1a2b.parquet")
    driver = f"/applications/{APPLICATION_ID}/jobs/00fexamplerun0001/SPARK_DRIVER/stdout"
    return [
        Call("the Glue metastore client checks the default database", "glue:GetDatabase", (catalog, default)),
        Call("it and Spark create default when it is missing", "glue:CreateDatabase", (catalog, default)),
        Call("the Hive metastore client lists databases", "glue:GetDatabases", (catalog,)),
        Call("CREATE NAMESPACE IF NOT EXISTS, default location", "glue:GetDatabase", (catalog, database)),
        Call("Iceberg loads the table", "glue:GetTable", (catalog, database, table_arn)),
        Call("the first run creates the table", "glue:CreateTable", (catalog, database, table_arn)),
        Call("every commit", "glue:UpdateTable", (catalog, database, table_arn)),
        Call("list the database's tables", "glue:GetTables", (catalog, database, table_arn)),
        Call(
            "read an export",
            "s3:GetObject",
            (_s3(EXPORT_BUCKET, f"{prefix}/AWSDynamoDB/0123-ab/manifest-summary.json"),),
        ),
        Call("list the exports", "s3:ListBucket", (_s3(EXPORT_BUCKET),), {"s3:prefix": f"{prefix}/AWSDynamoDB/"}),
        Call("fetch the job's code", "s3:GetObject", (_s3(ARTIFACTS_BUCKET, "code/0123abcd/entry_point.py"),)),
        Call("EMR writes the job's logs to S3", "s3:PutObject", (_s3(ARTIFACTS_BUCKET, f"emr-logs{driver}.gz"),)),
        *(
            Call("S3FileIO reads, writes and cleans up table files", action, (data_file,))
            for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload")
        ),
        Call("remove_orphan_files lists the table's files", "s3:ListBucket", (_s3(WAREHOUSE_BUCKET),)),
        Call("EMR ships the driver's output to CloudWatch", "logs:CreateLogStream", (_log_stream(driver),)),
        Call("EMR ships the driver's output to CloudWatch", "logs:PutLogEvents", (_log_stream(driver),)),
    ]


def job_role_refusals(parameters: dict[str, str]) -> list[Call]:
    """What no code path of the job calls, so its role must not be able to."""
    db, table, prefix = parameters["GlueDatabaseName"], parameters["IcebergTableName"], parameters["ExportPrefix"]
    catalog, database, default = _glue("catalog"), _glue(f"database/{db}"), _glue("database/default")
    table_arn, other = _glue(f"table/{db}/{table}"), _glue("database/other")
    export_object = _s3(EXPORT_BUCKET, f"{prefix}/AWSDynamoDB/{EXPORT_ID}/manifest-summary.json")
    data_file = _s3(WAREHOUSE_BUCKET, f"warehouse/{db}.db/{table}/data/00000-0-1a2b.parquet")
    return [
        Call("drop the table", "glue:DeleteTable", (catalog, database, table_arn)),
        *(
            Call("Glue partitions are Hive tables'; Iceberg keeps its own", action, (catalog, database, table_arn))
            for action in (
                "glue:GetPartition",
                "glue:GetPartitions",
                "glue:CreatePartition",
                "glue:BatchCreatePartition",
            )
        ),
        Call("create the stack's database (the stack does)", "glue:CreateDatabase", (catalog, database)),
        Call("create any other database", "glue:CreateDatabase", (catalog, other)),
        Call("read another database", "glue:GetDatabase", (catalog, other)),
        Call("read another database's table", "glue:GetTable", (catalog, other, _glue("table/other/t"))),
        Call("read a table in default", "glue:GetTable", (catalog, default, _glue("table/default/t"))),
        Call("create a table in default", "glue:CreateTable", (catalog, default, _glue("table/default/t"))),
        Call("change the default database", "glue:UpdateDatabase", (catalog, default)),
        Call("delete the default database", "glue:DeleteDatabase", (catalog, default)),
        Call("write into the exports", "s3:PutObject", (_s3(EXPORT_BUCKET, f"{prefix}/AWSDynamoDB/x"),)),
        Call(
            "delete an applied export (export housekeeping runs on the Dagster side)",
            "s3:DeleteObject",
            (_s3(EXPORT_BUCKET, f"{prefix}/AWSDynamoDB/{EXPORT_ID}/data/0a1b2c3d.json.gz"), export_object),
        ),
        Call("delete what is not an export under the prefix", "s3:DeleteObject", (_s3(EXPORT_BUCKET, f"{prefix}/x"),)),
        Call(
            "delete exports outside the prefix",
            "s3:DeleteObject",
            (_s3(EXPORT_BUCKET, f"other/AWSDynamoDB/{EXPORT_ID}/manifest-summary.json"),),
        ),
        Call("delete an export for good (past versioning)", "s3:DeleteObjectVersion", (export_object,)),
        Call("delete a table file for good (past versioning)", "s3:DeleteObjectVersion", (data_file,)),
        Call("change its own code", "s3:PutObject", (_s3(ARTIFACTS_BUCKET, "code/0123abcd/entry_point.py"),)),
        Call("list all of the export bucket", "s3:ListBucket", (_s3(EXPORT_BUCKET),), {"s3:prefix": ""}),
        Call("read the source table", "dynamodb:Scan", (f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/x",)),
    ]


# The calls the EMR Serverless runner makes on the application only under a setting, each with the stack parameter
# mirroring that setting: start_application starts a stopped application; stop_application first lists the job
# runs active on it (paginated ListJobRuns) and stops it only when no other one is active.
APPLICATION_LIFECYCLE_CALLS = (
    ("emr-serverless:StartApplication", "RunnerStartsApplication", "start the stopped application"),
    ("emr-serverless:ListJobRuns", "RunnerStopsApplication", "before stopping it, list the job runs active on it"),
    ("emr-serverless:StopApplication", "RunnerStopsApplication", "stop it when no other job run is active"),
)


def orchestrator_calls(parameters: dict[str, str]) -> list[Call]:
    """What the Dagster code location calls: the exporter, the EMR Serverless runner (through Dagster Pipes),
    PyIceberg's Glue catalog for status and checks, and export housekeeping (table upkeep; the CLI's
    `maintain --source` makes the same calls)."""
    db, table, prefix = parameters["GlueDatabaseName"], parameters["IcebergTableName"], parameters["ExportPrefix"]
    catalog, database, table_arn = _glue("catalog"), _glue(f"database/{db}"), _glue(f"table/{db}/{table}")
    source = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{parameters['DynamoDBTableName']}"
    export_object = _s3(EXPORT_BUCKET, f"{prefix}/AWSDynamoDB/0123-ab/manifest-files.json")
    old_export = f"{prefix}/AWSDynamoDB/{EXPORT_ID}"
    # An incremental export's data files are in the shared data folder; a full export's in its own data/ folder.
    shared_data_file = _s3(EXPORT_BUCKET, f"{prefix}/AWSDynamoDB/data/0a1b2c3d.json.gz")
    code = _s3(ARTIFACTS_BUCKET, "code/0123abcd/ddb_iceberg_job.zip")
    group = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{LOG_GROUP}:*"
    return [
        Call("check point-in-time recovery is on", "dynamodb:DescribeContinuousBackups", (source,)),
        Call("find an export already made", "dynamodb:ListExports", ("*",), {"aws:RequestedRegion": REGION}),
        Call("start an export", "dynamodb:ExportTableToPointInTime", (source,)),
        Call("wait for it", "dynamodb:DescribeExport", (f"{source}/export/01700000000000-abcd1234",)),
        Call("DynamoDB writes the export as its caller", "s3:PutObject", (export_object,)),
        Call("read an export's manifests", "s3:GetObject", (export_object,)),
        Call("list the exports", "s3:ListBucket", (_s3(EXPORT_BUCKET),), {"s3:prefix": f"{prefix}/"}),
        Call("head_object: is this job package there", "s3:GetObject", (code,)),
        Call("head_object answers 404, not 403, for a missing one", "s3:ListBucket", (_s3(ARTIFACTS_BUCKET),)),
        Call("upload the job package", "s3:PutObject", (code,)),
        Call("check the application's release", "emr-serverless:GetApplication", (APPLICATION_ARN,)),
        Call("start the job run", "emr-serverless:StartJobRun", (APPLICATION_ARN,)),
        Call("with its tags", "emr-serverless:TagResource", (JOB_RUN_ARN,)),
        Call("pass the job role", "iam:PassRole", (JOB_ROLE_ARN,), {"iam:PassedToService": EMR_SERVICE}),
        Call("watch the job run", "emr-serverless:GetJobRun", (JOB_RUN_ARN,)),
        Call("cancel it", "emr-serverless:CancelJobRun", (JOB_RUN_ARN,)),
        Call("link its dashboard", "emr-serverless:GetDashboardForJobRun", (JOB_RUN_ARN,)),
        *(
            Call(why, action, (APPLICATION_ARN,))
            for action, parameter, why in APPLICATION_LIFECYCLE_CALLS
            if parameters[parameter] == "true"
        ),
        Call("Pipes reads the job's messages", "logs:GetLogEvents", (_log_stream("x/SPARK_DRIVER/stdout"),)),
        Call("Pipes reads the job's messages", "logs:FilterLogEvents", (group,)),
        Call("Pipes checks the stream exists", "logs:DescribeLogStreams", (group,)),
        Call("PyIceberg loads the table", "glue:GetTable", (catalog, database, table_arn)),
        Call(
            "and its metadata", "s3:GetObject", (_s3(WAREHOUSE_BUCKET, f"warehouse/{db}.db/{table}/metadata/1.json"),)
        ),
        Call("and its metadata", "s3:ListBucket", (_s3(WAREHOUSE_BUCKET),)),
        Call(
            "housekeeping lists the export folders",
            "s3:ListBucket",
            (_s3(EXPORT_BUCKET),),
            {"s3:prefix": f"{prefix}/AWSDynamoDB/"},
        ),
        Call("and each old one", "s3:ListBucket", (_s3(EXPORT_BUCKET),), {"s3:prefix": f"{old_export}/"}),
        Call("and a full export's data", "s3:ListBucket", (_s3(EXPORT_BUCKET),), {"s3:prefix": f"{old_export}/data/"}),
        Call("reads its manifests", "s3:GetObject", (_s3(EXPORT_BUCKET, f"{old_export}/manifest-summary.json"),)),
        Call("HeadObject: the size of a data file in the shared folder", "s3:GetObject", (shared_data_file,)),
        Call(
            "DeleteObjects: s3:DeleteObject on each key of the batch",
            "s3:DeleteObject",
            (
                shared_data_file,
                _s3(EXPORT_BUCKET, f"{old_export}/data/4e5f6a7b.json.gz"),
                _s3(EXPORT_BUCKET, f"{old_export}/manifest-summary.json"),
                _s3(EXPORT_BUCKET, f"{old_export}/manifest-files.json"),
                _s3(EXPORT_BUCKET, f"{old_export}/_started"),
            ),
        ),
    ]


def orchestrator_refusals(parameters: dict[str, str]) -> list[Call]:
    """What no code path of the Dagster side calls, so the policy must not allow it."""
    db, table, prefix = parameters["GlueDatabaseName"], parameters["IcebergTableName"], parameters["ExportPrefix"]
    catalog, database, table_arn = _glue("catalog"), _glue(f"database/{db}"), _glue(f"table/{db}/{table}")
    source = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{parameters['DynamoDBTableName']}"
    export_object = _s3(EXPORT_BUCKET, f"{prefix}/AWSDynamoDB/{EXPORT_ID}/manifest-summary.json")
    return [
        Call("list exports in another Region", "dynamodb:ListExports", ("*",), {"aws:RequestedRegion": "us-east-1"}),
        Call("read the source table's items", "dynamodb:Scan", (source,)),
        Call("export another table", "dynamodb:ExportTableToPointInTime", (source + "-other",)),
        Call("write the table's files", "s3:PutObject", (_s3(WAREHOUSE_BUCKET, f"warehouse/{db}.db/{table}/x"),)),
        Call(
            "housekeeping deletes what is not an export under the prefix",
            "s3:DeleteObject",
            (_s3(EXPORT_BUCKET, f"{prefix}/x"),),
        ),
        Call(
            "delete exports outside the prefix",
            "s3:DeleteObject",
            (_s3(EXPORT_BUCKET, f"other/AWSDynamoDB/{EXPORT_ID}/manifest-summary.json"),),
        ),
        Call("delete an export for good (past versioning)", "s3:DeleteObjectVersion", (export_object,)),
        Call(
            "delete a table file (only the job does)",
            "s3:DeleteObject",
            (_s3(WAREHOUSE_BUCKET, f"warehouse/{db}.db/{table}/data/00000-0-1a2b.parquet"),),
        ),
        Call("delete the job's code", "s3:DeleteObject", (_s3(ARTIFACTS_BUCKET, "code/0123abcd/ddb_iceberg_job.zip"),)),
        Call("list all of the export bucket", "s3:ListBucket", (_s3(EXPORT_BUCKET),), {"s3:prefix": ""}),
        Call("commit to the table (only the job does)", "glue:UpdateTable", (catalog, database, table_arn)),
        Call("create the table (only the job does)", "glue:CreateTable", (catalog, database, table_arn)),
        Call("read the default database", "glue:GetDatabase", (catalog, _glue("database/default"))),
        Call("run jobs on another application", "emr-serverless:StartJobRun", (OTHER_APPLICATION_ARN,)),
        Call(
            "pass the job role elsewhere", "iam:PassRole", (JOB_ROLE_ARN,), {"iam:PassedToService": "ec2.amazonaws.com"}
        ),
        *(
            Call(f"{why}, which the runner does not ({parameter}=false)", action, (APPLICATION_ARN,))
            for action, parameter, why in APPLICATION_LIFECYCLE_CALLS
            if parameters[parameter] != "true"
        ),
    ]


def _audit(deployed: Deployed, principal: str, needed: list[Call], refused: list[Call]) -> list[str]:
    problems = [f"{principal}: cannot {call}" for call in needed if not allowed(deployed, principal, call)]
    return problems + [f"{principal}: may {call}" for call in refused if allowed(deployed, principal, call)]


def check_job_role_real_run(template: Template) -> list[str]:
    """The job role can make every call a real run makes, and none of those no code path makes."""
    deployed = deploy(template)
    return _audit(deployed, JOB_ROLE, job_run_calls(deployed.parameters), job_role_refusals(deployed.parameters))


def check_orchestrator_real_run(template: Template) -> list[str]:
    """The Dagster policy allows every call the code location makes, and none of those no code path makes, for
    each setting of the parameters mirroring the runner's start_application / stop_application."""
    problems: list[str] = []
    for starts, stops in itertools.product(["false", "true"], repeat=2):
        deployed = deploy(template, RunnerStartsApplication=starts, RunnerStopsApplication=stops)
        needed, refused = orchestrator_calls(deployed.parameters), orchestrator_refusals(deployed.parameters)
        variant = f"RunnerStartsApplication={starts}, RunnerStopsApplication={stops}"
        problems.extend(f"{variant}: {problem}" for problem in _audit(deployed, DAGSTER_POLICY, needed, refused))
    return problems


def check_application_lifecycle(template: Template) -> list[str]:
    """StartApplication, and StopApplication with the ListJobRuns check before it: Dagster may call each exactly when
    the parameter mirroring the runner's setting says the runner does, on the stack's application only; the job role
    never."""
    problems = []
    for starts, stops in itertools.product(["false", "true"], repeat=2):
        deployed = deploy(template, RunnerStartsApplication=starts, RunnerStopsApplication=stops)
        variant = f"RunnerStartsApplication={starts}, RunnerStopsApplication={stops}"
        for action, parameter, _ in APPLICATION_LIFECYCLE_CALLS:
            wanted = deployed.parameters[parameter]
            for principal in (DAGSTER_POLICY, JOB_ROLE):
                expected = wanted == "true" and principal == DAGSTER_POLICY
                if allowed(deployed, principal, Call("", action, (APPLICATION_ARN,))) != expected:
                    problems.append(f"{variant}: {principal} {'cannot' if expected else 'may'} {action}")
            if allowed(deployed, DAGSTER_POLICY, Call("", action, (OTHER_APPLICATION_ARN,))):
                problems.append(f"{variant}: {DAGSTER_POLICY} may {action} on another application")
    return problems


def lake_formation_target(resource: dict[str, Any], names: dict[str, str]) -> str:
    """A Lake Formation grant's resource as one string: database/<db>, table/<db>/<table or *>, location/<S3 ARN>;
    `elsewhere` when its catalog is not this account's."""
    [(kind, spec)] = resource.items()
    if concrete(spec.get("CatalogId", ""), names) != ACCOUNT:
        return f"elsewhere: {kind} {json.dumps(spec, sort_keys=True)}"
    if kind == "Database":
        return f"database/{concrete(spec['Name'], names)}"
    if kind == "Table":
        table = "*" if "TableWildcard" in spec else concrete(spec["Name"], names)
        return f"table/{concrete(spec['DatabaseName'], names)}/{table}"
    if kind == "DataLocation":
        return f"location/{concrete(spec['ResourceArn'], names)}"
    return f"{kind}: {json.dumps(spec, sort_keys=True)}"


def expected_lake_formation_grants(parameters: dict[str, str]) -> dict[tuple[str, str], frozenset[str]]:
    """(principal, resource) -> permissions, when LakeFormationGrants is true."""
    db, dagster = parameters["GlueDatabaseName"], parameters["DagsterRoleArn"]
    grants = {
        (JOB_ROLE_ARN, f"database/{db}"): JOB_LAKE_FORMATION_DATABASE,
        (JOB_ROLE_ARN, f"table/{db}/*"): JOB_LAKE_FORMATION_TABLES,
        (JOB_ROLE_ARN, f"location/{_s3(WAREHOUSE_BUCKET, 'warehouse')}"): JOB_LAKE_FORMATION_LOCATION,
    }
    if dagster:
        grants[(dagster, f"database/{db}")] = DAGSTER_LAKE_FORMATION_DATABASE
        grants[(dagster, f"table/{db}/*")] = DAGSTER_LAKE_FORMATION_TABLES
    return grants


def lake_formation_problems(deployed: Deployed) -> list[str]:
    """Against what this deployment's parameters call for: the locations registered, each grant's permissions (none
    with the grant option), and each data location grant made after its location's registration."""
    names = deployed.names()
    resources = deployed.template["Resources"]
    problems = []
    registrations = {
        concrete(body["Properties"]["ResourceArn"], names): name
        for name, body in resources_of_type(deployed.template, "AWS::LakeFormation::Resource").items()
    }
    wanted_on = deployed.parameters["LakeFormationGrants"] == "true"
    wanted_locations = {_s3(WAREHOUSE_BUCKET, "warehouse")} if wanted_on else set()
    if set(registrations) != wanted_locations:
        problems.append(f"registered locations {sorted(registrations)}, expected {sorted(wanted_locations)}")
    granted: dict[tuple[str, str], frozenset[str]] = {}
    for name, body in resources_of_type(deployed.template, "AWS::LakeFormation::PrincipalPermissions").items():
        props = body["Properties"]
        principal = concrete(props["Principal"]["DataLakePrincipalIdentifier"], names)
        target = lake_formation_target(props["Resource"], names)
        granted[(principal, target)] = granted.get((principal, target), frozenset()) | frozenset(props["Permissions"])
        if props.get("PermissionsWithGrantOption"):
            problems.append(f"{name}: grants {props['PermissionsWithGrantOption']} with the grant option")
        if target.startswith("location/"):
            registration = registrations.get(target.removeprefix("location/"))
            if registration is None or registration not in as_list(body.get("DependsOn")):
                problems.append(f"{name}: does not depend on its location's registration ({registration})")
    problems.extend(
        f"{name}: {body['Type']} is none of the expected Lake Formation resources"
        for name, body in resources.items()
        if str(body.get("Type", "")).startswith("AWS::LakeFormation::")
        and body["Type"] not in {"AWS::LakeFormation::Resource", "AWS::LakeFormation::PrincipalPermissions"}
    )
    wanted = expected_lake_formation_grants(deployed.parameters) if wanted_on else {}
    for principal, target in sorted(set(granted) | set(wanted)):
        has, needs = granted.get((principal, target), frozenset()), wanted.get((principal, target), frozenset())
        if has != needs:
            problems.append(
                f"{principal or '(no principal)'} on {target}: granted {sorted(has)}, expected {sorted(needs)}"
            )
    return problems


def check_lake_formation_grants(template: Template) -> list[str]:
    """The Lake Formation part exists only under its parameter: nothing by default, nor without LakeFormationGrants
    even when DagsterRoleArn is set; with it, exactly the grants the calls above need, the Dagster role's only when
    given."""
    problems: list[str] = []
    for grants_on, dagster_role in itertools.product(["false", "true"], ["", DAGSTER_ROLE_ARN]):
        variant = f"LakeFormationGrants={grants_on}, DagsterRoleArn={dagster_role or '(none)'}"
        deployed = deploy(template, LakeFormationGrants=grants_on, DagsterRoleArn=dagster_role)
        problems.extend(f"{variant}: {problem}" for problem in lake_formation_problems(deployed))
    defaults = deploy(template)
    problems.extend(
        f"defaults: {name} is deployed"
        for name, body in defaults.template["Resources"].items()
        if str(body.get("Type", "")).startswith("AWS::LakeFormation::")
    )
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
    check_deletable_buckets_are_versioned,
    check_object_deletes_are_limited,
    check_output_descriptions,
    check_job_role_real_run,
    check_orchestrator_real_run,
    check_application_lifecycle,
    check_lake_formation_grants,
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


# checkov runs from its own virtualenv (`make checkov` builds it; `make test` passes its path), because it pins
# boto3 and others far below what the project runs with.
CHECKOV = Path(os.environ.get("DDB_ICEBERG_CHECKOV", REPO_ROOT / ".venv-checkov" / "bin" / "checkov"))
# The checks the stack does not follow on purpose, each skipped on its resource in the template with the reason:
# server access logs would need a fourth bucket; the artifacts bucket holds nothing an overwrite loses; the log
# group keeps CloudWatch's default encryption rather than bring in a KMS key.
CHECKOV_SKIPS = {
    ("CKV_AWS_18", "AWS::S3::Bucket.ExportBucket"),
    ("CKV_AWS_18", "AWS::S3::Bucket.WarehouseBucket"),
    ("CKV_AWS_18", "AWS::S3::Bucket.ArtifactsBucket"),
    ("CKV_AWS_21", "AWS::S3::Bucket.ArtifactsBucket"),
    ("CKV_AWS_158", "AWS::Logs::LogGroup.EmrLogGroup"),
}
CHECKOV_NO_COMMENT = "No comment provided"  # what checkov reports for a skip without one


def run_checkov(directory: Path) -> dict[str, Any]:
    """checkov's JSON report on the CloudFormation templates of `directory`. Offline: no download of Prisma Cloud's
    guidelines, no version check."""
    assert CHECKOV.is_file(), f"checkov is not installed at {CHECKOV}: `make checkov` installs it in .venv-checkov"
    command = [str(CHECKOV), "-d", str(directory), "--framework", "cloudformation", "-o", "json", "--skip-download"]
    environment = os.environ | {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, timeout=300, check=False)
    # checkov exits 1 when a check fails: the report says which.
    assert completed.returncode in (0, 1), completed.stderr
    report: dict[str, Any] = json.loads(completed.stdout)
    return report


def checkov_problems(report: dict[str, Any]) -> list[str]:
    """Failed checks and parsing errors; skips other than CHECKOV_SKIPS, or without a reason; a scan of nothing."""
    results = report.get("results", {})
    problems = [
        f"{check['check_id']} failed for {check['resource']}: {check['check_name']}"
        for check in results.get("failed_checks", [])
    ]
    problems.extend(f"checkov could not parse {path}" for path in results.get("parsing_errors", []))
    for check in results.get("skipped_checks", []):
        skip = (check["check_id"], check["resource"])
        reason = str(check.get("check_result", {}).get("suppress_comment", "")).strip()
        if skip not in CHECKOV_SKIPS:
            problems.append(f"{skip[0]} is skipped for {skip[1]}, which CHECKOV_SKIPS does not list")
        if reason in ("", CHECKOV_NO_COMMENT):
            problems.append(f"{skip[0]} is skipped for {skip[1]} without a reason")
    if not results.get("passed_checks"):
        problems.append(f"checkov passed no check: did it find the template? summary {report.get('summary')}")
    return problems


def test_checkov_reports_no_failed_check() -> None:
    """On deploy/, as `make checkov` runs it. Fails, not skips, when checkov is missing."""
    report = run_checkov(TEMPLATE_PATH.parent)
    assert checkov_problems(report) == []
    skipped = {(check["check_id"], check["resource"]) for check in report["results"]["skipped_checks"]}
    assert skipped == CHECKOV_SKIPS  # every listed skip is still needed


def test_checkov_catches_a_weakened_template(template: Template, tmp_path: Path) -> None:
    """The checkov test above can fail: an unversioned warehouse bucket, a skip with no reason, and a skip that is
    not listed are each reported."""
    weakened = copy.deepcopy(template)
    del weakened["Resources"]["WarehouseBucket"]["Properties"]["VersioningConfiguration"]
    del weakened["Resources"]["EmrLogGroup"]["Metadata"]["checkov"]["skip"][0]["comment"]
    skip_versioning = {"id": "CKV_AWS_21", "comment": "reason enough"}
    weakened["Resources"]["ExportBucket"]["Metadata"]["checkov"]["skip"].append(skip_versioning)
    (tmp_path / "ddb-iceberg.json").write_text(json.dumps(weakened))
    problems = checkov_problems(run_checkov(tmp_path))
    assert any(p.startswith("CKV_AWS_21 failed for AWS::S3::Bucket.WarehouseBucket") for p in problems), problems
    assert "CKV_AWS_158 is skipped for AWS::Logs::LogGroup.EmrLogGroup without a reason" in problems
    assert "CKV_AWS_21 is skipped for AWS::S3::Bucket.ExportBucket, which CHECKOV_SKIPS does not list" in problems


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


def test_the_application_parameters_mirror_the_runner() -> None:
    """The stack's defaults grant StartApplication / StopApplication exactly when the aws deployment's runner calls
    them (it does not: the application auto-starts and auto-stops); the parameters name real runner settings."""
    template = load_template()
    runner = aws_deployment({}).resources["merge_runner"]
    assert isinstance(runner, EmrServerlessMergeRunner)
    for parameter, setting in (
        ("RunnerStartsApplication", "start_application"),
        ("RunnerStopsApplication", "stop_application"),
    ):
        assert setting in EmrServerlessMergeRunner.model_fields
        assert template["Parameters"][parameter]["Default"] == str(getattr(runner, setting)).lower()
        assert setting in template["Parameters"][parameter]["Description"]


def test_the_evaluator_follows_iam() -> None:
    """The evaluator the real-run checks rely on: wildcards, conditions (a missing key fails), Deny wins."""
    template: Template = {
        "Parameters": {"GlueDatabaseName": {"Default": "db"}},
        "Resources": {
            "P": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "s3:Get*",
                                "Resource": {"Fn::Sub": "${WarehouseBucket.Arn}/*"},
                            },
                            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::*/secret/*"},
                            {
                                "Effect": "Allow",
                                "Action": "s3:ListBucket",
                                "Resource": "arn:aws:s3:::b",
                                "Condition": {"StringLike": {"s3:prefix": ["p/*"]}},
                            },
                        ]
                    }
                },
            }
        },
    }
    deployed = deploy(template)
    assert allowed(deployed, "P", Call("", "s3:getobject", (_s3(WAREHOUSE_BUCKET, "a/b"),)))
    assert not allowed(deployed, "P", Call("", "s3:GetObject", (_s3(WAREHOUSE_BUCKET, "x/secret/y"),)))
    assert not allowed(deployed, "P", Call("", "s3:PutObject", (_s3(WAREHOUSE_BUCKET, "a"),)))
    assert not allowed(deployed, "P", Call("", "s3:GetObject", (_s3(EXPORT_BUCKET, "a"),)))
    assert allowed(deployed, "P", Call("", "s3:ListBucket", ("arn:aws:s3:::b",), {"s3:prefix": "p/q"}))
    assert not allowed(deployed, "P", Call("", "s3:ListBucket", ("arn:aws:s3:::b",), {"s3:prefix": "q"}))
    assert not allowed(deployed, "P", Call("", "s3:ListBucket", ("arn:aws:s3:::b",)))
    assert not allowed(deployed, "P", Call("", "s3:GetObject", (_s3(WAREHOUSE_BUCKET, "a"), _s3(EXPORT_BUCKET, "a"))))


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


def _set_resource(*resources: Any) -> Callable[[Statement], None]:
    def edit(statement: Statement) -> None:
        statement["Resource"] = list(resources)

    return edit


def _glue_sub(resource: str) -> dict[str, str]:
    return {"Fn::Sub": f"arn:${{AWS::Partition}}:glue:${{AWS::Region}}:${{AWS::AccountId}}:{resource}"}


def _statement_entries(template: Template, resource: str) -> list[Any]:
    props = properties(template, resource)
    document = props["Policies"][0]["PolicyDocument"] if "Policies" in props else props["PolicyDocument"]
    entries: list[Any] = document["Statement"]
    return entries


def _has_sid(entry: Any, sid: str) -> bool:
    return any(statement.get("Sid") == sid for _, statement in conditional_statements(entry))


def _drop_statement(resource: str, sid: str) -> Callable[[Template], None]:
    def mutate(template: Template) -> None:
        entries = _statement_entries(template, resource)
        entries[:] = [entry for entry in entries if not _has_sid(entry, sid)]

    return mutate


def _make_unconditional(resource: str, sid: str) -> Callable[[Template], None]:
    """Replace the `Fn::If` holding statement `sid` by the statement itself."""

    def mutate(template: Template) -> None:
        entries = _statement_entries(template, resource)
        entries[:] = [statement_by_sid(template, resource, sid) if _has_sid(e, sid) else e for e in entries]

    return mutate


def _set_condition(resource: str, sid: str, condition: str) -> Callable[[Template], None]:
    def mutate(template: Template) -> None:
        [entry] = [entry for entry in _statement_entries(template, resource) if _has_sid(entry, sid)]
        entry["Fn::If"][0] = condition

    return mutate


_BUCKET: KeyPath = ["Resources", "WarehouseBucket"]
_ENCRYPTION: KeyPath = [*_BUCKET, "Properties", "BucketEncryption", "ServerSideEncryptionConfiguration", 0]
_APP: KeyPath = ["Resources", "EmrApplication", "Properties"]
_TRUST: KeyPath = ["Resources", JOB_ROLE, "Properties", "AssumeRolePolicyDocument", "Statement", 0]
_TLS: KeyPath = ["Resources", "ArtifactsBucketPolicy", "Properties", "PolicyDocument", "Statement", 0]
_RULES: KeyPath = [*_BUCKET, "Properties", "LifecycleConfiguration", "Rules"]
_JOB_TABLES_GRANT: KeyPath = ["Resources", "JobRoleTablesGrant", "Properties"]

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
        _drop_statement(JOB_ROLE, "GlueDefaultDatabase"),
        check_job_role_real_run,
        "cannot glue:GetDatabase on arn:aws:glue:eu-west-1:123456789012:catalog, "
        "arn:aws:glue:eu-west-1:123456789012:database/default",
        id="job-role-cannot-look-up-default",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "GlueDefaultDatabase", _drop_action("glue:CreateDatabase")),
        check_job_role_real_run,
        "cannot glue:CreateDatabase",
        id="job-role-cannot-create-missing-default",
    ),
    pytest.param(
        _edit_statement(
            JOB_ROLE, "GlueDefaultDatabase", _set_resource(_glue_sub("catalog"), _glue_sub("databases/default"))
        ),
        check_job_role_real_run,
        "cannot glue:GetDatabase",
        id="default-database-arn-typo",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "GlueDefaultDatabase", _set_resource(_glue_sub("database/default"))),
        check_job_role_real_run,
        "cannot glue:CreateDatabase",
        id="default-database-without-catalog",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "GlueDefaultDatabase", _set_resource(_glue_sub("catalog"), _glue_sub("database/*"))),
        check_job_role_real_run,
        "may glue:CreateDatabase on arn:aws:glue:eu-west-1:123456789012:catalog, "
        "arn:aws:glue:eu-west-1:123456789012:database/other",
        id="job-role-creates-any-database",
    ),
    pytest.param(
        _drop_statement(JOB_ROLE, "GlueListDatabases"),
        check_job_role_real_run,
        "cannot glue:GetDatabases",
        id="job-role-cannot-list-databases",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "GlueCatalogTables", _drop_action("glue:UpdateTable")),
        check_job_role_real_run,
        "cannot glue:UpdateTable",
        id="job-role-cannot-commit",
    ),
    pytest.param(
        _edit_statement(
            JOB_ROLE,
            "GlueCatalogTables",
            lambda statement: statement["Resource"].pop(0),  # the catalog
        ),
        check_job_role_real_run,
        "cannot glue:GetTable",
        id="job-role-tables-without-catalog",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "GlueCatalogTables", _append_action("glue:GetPartitions")),
        check_job_role_real_run,
        "may glue:GetPartitions",
        id="job-role-reads-glue-partitions",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "GlueCatalogTables", _append_action("glue:BatchCreatePartition")),
        check_glue_actions,
        "glue:BatchCreatePartition",
        id="job-role-writes-glue-partitions",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "ReadWriteWarehouseObjects", _drop_action("s3:DeleteObject")),
        check_job_role_real_run,
        "cannot s3:DeleteObject",
        id="job-role-cannot-clean-up",
    ),
    pytest.param(
        _drop_statement(DAGSTER_POLICY, "FindExports"),
        check_orchestrator_real_run,
        "cannot dynamodb:ListExports",
        id="exporter-cannot-find-exports",
    ),
    pytest.param(
        _drop_statement(DAGSTER_POLICY, "FindExports"),
        check_dynamodb_actions,
        "expected",
        id="exporter-actions-without-list-exports",
    ),
    pytest.param(
        _edit_statement(
            DAGSTER_POLICY,
            "FindExports",
            _set_resource({"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/x"}),
        ),
        check_orchestrator_real_run,
        "cannot dynamodb:ListExports",
        id="list-exports-on-a-table-arn-never-matches",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "FindExports", lambda statement: statement.pop("Condition")),
        check_no_star_resources,
        "without an aws:RequestedRegion condition",
        id="list-exports-in-every-region",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "FindExports", lambda statement: statement.pop("Condition")),
        check_orchestrator_real_run,
        "may dynamodb:ListExports",
        id="list-exports-in-another-region",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "FindExports", _append_action("dynamodb:DescribeExport")),
        check_no_star_resources,
        "Resource is '*' for ['dynamodb:DescribeExport']",
        id="star-resource-for-another-action",
    ),
    pytest.param(
        _edit_statement(
            DAGSTER_POLICY,
            "ListArtifacts",
            lambda statement: statement.update(Condition={"StringLike": {"s3:prefix": ["code", "code/*"]}}),
        ),
        check_orchestrator_real_run,
        "cannot s3:ListBucket on arn:aws:s3:::ddb-iceberg-artifactsbucket-7a8b9c",
        id="head-object-gets-403-not-404",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "ReadCatalog", _drop_action("glue:GetTable")),
        check_orchestrator_real_run,
        "cannot glue:GetTable",
        id="dagster-cannot-load-the-table",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "ReadCatalog", _append_action("glue:UpdateTable")),
        check_orchestrator_real_run,
        "may glue:UpdateTable",
        id="dagster-commits",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "ReadCatalog", _append_action("glue:GetTables")),
        check_glue_actions,
        "glue:GetTables",
        id="dagster-lists-tables",
    ),
    pytest.param(
        _make_unconditional(DAGSTER_POLICY, "StartApplication"),
        check_application_lifecycle,
        "RunnerStartsApplication=false, RunnerStopsApplication=false: DagsterManagedPolicy may "
        "emr-serverless:StartApplication",
        id="start-application-unconditional",
    ),
    pytest.param(
        _set_condition(DAGSTER_POLICY, "StopApplication", "GrantStartApplication"),
        check_application_lifecycle,
        "RunnerStartsApplication=false, RunnerStopsApplication=true: DagsterManagedPolicy cannot "
        "emr-serverless:StopApplication",
        id="stop-application-on-the-wrong-condition",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "StopApplication", _drop_action("emr-serverless:ListJobRuns")),
        check_application_lifecycle,
        "RunnerStartsApplication=false, RunnerStopsApplication=true: DagsterManagedPolicy cannot "
        "emr-serverless:ListJobRuns",
        id="stop-application-without-list-job-runs",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "StopApplication", _drop_action("emr-serverless:ListJobRuns")),
        check_orchestrator_real_run,
        f"RunnerStopsApplication=true: DagsterManagedPolicy: cannot emr-serverless:ListJobRuns on {APPLICATION_ARN}",
        id="runner-cannot-check-for-active-job-runs",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "RunJobs", _append_action("emr-serverless:ListJobRuns")),
        check_orchestrator_real_run,
        "RunnerStopsApplication=false: DagsterManagedPolicy: may emr-serverless:ListJobRuns",
        id="list-job-runs-without-stop-application",
    ),
    pytest.param(
        _edit_statement(
            DAGSTER_POLICY,
            "StartApplication",
            _set_resource(
                {"Fn::Sub": "arn:${AWS::Partition}:emr-serverless:${AWS::Region}:${AWS::AccountId}:/applications/*"}
            ),
        ),
        check_application_lifecycle,
        "may emr-serverless:StartApplication on another application",
        id="start-any-application",
    ),
    pytest.param(
        _add_statement(
            JOB_ROLE,
            {
                "Effect": "Allow",
                "Action": "emr-serverless:StopApplication",
                "Resource": {"Fn::GetAtt": ["EmrApplication", "Arn"]},
            },
        ),
        check_application_lifecycle,
        "EmrJobRole may emr-serverless:StopApplication",
        id="job-role-stops-the-application",
    ),
    pytest.param(
        _delete([*_BUCKET, "Properties", "VersioningConfiguration"]),
        check_deletable_buckets_are_versioned,
        "WarehouseBucket: versioning is None, not Enabled",
        id="warehouse-unversioned",
    ),
    pytest.param(
        _set(["Resources", "ExportBucket", "Properties", "VersioningConfiguration", "Status"], "Suspended"),
        check_deletable_buckets_are_versioned,
        f"ExportBucket: versioning is 'Suspended', not Enabled; {DAGSTER_POLICY}[DeleteAppliedExports]",
        id="export-bucket-versioning-suspended",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "WriteJobLogs", _append_action("s3:DeleteObject")),
        check_deletable_buckets_are_versioned,
        "ArtifactsBucket: versioning is None, not Enabled; EmrJobRole/ddb-iceberg-merge-job[WriteJobLogs]",
        id="deletes-in-an-unversioned-bucket",
    ),
    pytest.param(
        _delete([*_RULES, 0, "NoncurrentVersionExpiration"]),
        check_deletable_buckets_are_versioned,
        "WarehouseBucket: versioned, but no rule expires noncurrent versions",
        id="noncurrent-versions-kept-forever",
    ),
    pytest.param(
        _set([*_RULES, 0, "Prefix"], "warehouse/"),
        check_deletable_buckets_are_versioned,
        "no rule expires noncurrent versions over the whole bucket",
        id="noncurrent-versions-expire-under-one-prefix-only",
    ),
    pytest.param(
        _set([*_RULES, 0, "Status"], "Disabled"),
        check_deletable_buckets_are_versioned,
        "no rule expires noncurrent versions",
        id="noncurrent-expiry-disabled",
    ),
    pytest.param(
        _delete([*_RULES, 0, "ExpiredObjectDeleteMarker"]),
        check_deletable_buckets_are_versioned,
        "WarehouseBucket: versioned, but no rule removes expired delete markers",
        id="delete-markers-pile-up",
    ),
    pytest.param(
        _delete(["Resources", "ExportBucket", "Properties", "LifecycleConfiguration", "Rules", 1]),
        check_deletable_buckets_are_versioned,
        "ExportBucket: no rule aborts incomplete multipart uploads",
        id="export-multipart-uploads-kept",
    ),
    pytest.param(
        _edit_statement(
            DAGSTER_POLICY, "DeleteAppliedExports", _set_resource({"Fn::Sub": "${ExportBucket.Arn}/${ExportPrefix}/*"})
        ),
        check_object_deletes_are_limited,
        f"{DAGSTER_POLICY}[DeleteAppliedExports]: deletes exports on '${{ExportBucket.Arn}}/${{ExportPrefix}}/*', not",
        id="export-housekeeping-deletes-the-whole-prefix",
    ),
    pytest.param(
        _edit_statement(
            DAGSTER_POLICY, "DeleteAppliedExports", _set_resource({"Fn::Sub": "${ExportBucket.Arn}/${ExportPrefix}/*"})
        ),
        check_orchestrator_real_run,
        f"{DAGSTER_POLICY}: may s3:DeleteObject on arn:aws:s3:::ddb-iceberg-exportbucket-1a2b3c/ddb-exports/x",
        id="export-housekeeping-deletes-what-is-not-an-export",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "DeleteAppliedExports", _set_resource({"Fn::Sub": "${ExportBucket.Arn}/*"})),
        check_object_deletes_are_limited,
        "deletes exports on '${ExportBucket.Arn}/*'",
        id="export-housekeeping-deletes-the-whole-bucket",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "DeleteAppliedExports", _set_resource({"Fn::Sub": "${ExportBucket.Arn}/*"})),
        check_orchestrator_real_run,
        "may s3:DeleteObject on arn:aws:s3:::ddb-iceberg-exportbucket-1a2b3c/other/AWSDynamoDB/",
        id="export-housekeeping-deletes-outside-the-prefix",
    ),
    pytest.param(
        _drop_statement(DAGSTER_POLICY, "DeleteAppliedExports"),
        check_orchestrator_real_run,
        f"{DAGSTER_POLICY}: cannot s3:DeleteObject on arn:aws:s3:::ddb-iceberg-exportbucket-1a2b3c/ddb-exports/"
        "AWSDynamoDB/data/",
        id="dagster-cannot-delete-applied-exports",
    ),
    pytest.param(
        _edit_statement(
            DAGSTER_POLICY,
            "ListExports",
            lambda statement: statement.update(
                Condition={"StringLike": {"s3:prefix": [{"Ref": "ExportPrefix"}, {"Fn::Sub": "${ExportPrefix}/"}]}}
            ),
        ),
        check_orchestrator_real_run,
        f"{DAGSTER_POLICY}: cannot s3:ListBucket on arn:aws:s3:::ddb-iceberg-exportbucket-1a2b3c "
        "(housekeeping lists the export folders)",
        id="housekeeping-cannot-list-export-folders",
    ),
    pytest.param(
        _edit_statement(
            DAGSTER_POLICY,
            "ReadExports",
            _set_resource({"Fn::Sub": "${ExportBucket.Arn}/${ExportPrefix}/AWSDynamoDB/*/manifest-*"}),
        ),
        check_orchestrator_real_run,
        f"{DAGSTER_POLICY}: cannot s3:GetObject on arn:aws:s3:::ddb-iceberg-exportbucket-1a2b3c/ddb-exports/"
        "AWSDynamoDB/data/0a1b2c3d.json.gz (HeadObject",
        id="housekeeping-cannot-size-data-files",
    ),
    pytest.param(
        _add_statement(
            JOB_ROLE,
            {
                "Sid": "DeleteAppliedExports",
                "Effect": "Allow",
                "Action": "s3:DeleteObject",
                "Resource": {"Fn::Sub": EXPORT_DELETE_RESOURCE},
            },
        ),
        check_object_deletes_are_limited,
        f"{JOB_ROLE}/ddb-iceberg-merge-job[DeleteAppliedExports]: may delete exports ('{EXPORT_DELETE_RESOURCE}'); "
        f"only {DAGSTER_POLICY} does",
        id="job-role-deletes-exports-again",
    ),
    pytest.param(
        _add_statement(
            JOB_ROLE,
            {
                "Sid": "DeleteAppliedExports",
                "Effect": "Allow",
                "Action": "s3:DeleteObject",
                "Resource": {"Fn::Sub": EXPORT_DELETE_RESOURCE},
            },
        ),
        check_job_role_real_run,
        f"{JOB_ROLE}: may s3:DeleteObject on arn:aws:s3:::ddb-iceberg-exportbucket-1a2b3c/ddb-exports/AWSDynamoDB/",
        id="job-role-may-delete-an-applied-export",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "ReadExports", _append_action("s3:DeleteObject")),
        check_object_deletes_are_limited,
        f"{JOB_ROLE}/ddb-iceberg-merge-job[ReadExports]: may delete exports "
        f"('${{ExportBucket.Arn}}/${{ExportPrefix}}/*'); only {DAGSTER_POLICY} does",
        id="job-role-deletes-exports",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "WriteExports", _append_action("s3:DeleteObject")),
        check_object_deletes_are_limited,
        f"{DAGSTER_POLICY}[WriteExports]: deletes exports on '${{ExportBucket.Arn}}/${{ExportPrefix}}/*', not only",
        id="dagster-deletes-the-whole-export-prefix",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "WriteExports", _append_action("s3:DeleteObject")),
        check_orchestrator_real_run,
        f"{DAGSTER_POLICY}: may s3:DeleteObject on arn:aws:s3:::ddb-iceberg-exportbucket-1a2b3c/ddb-exports/x",
        id="dagster-may-delete-what-is-not-an-export",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "ReadWarehouseObjects", _append_action("s3:DeleteObject")),
        check_orchestrator_real_run,
        f"{DAGSTER_POLICY}: may s3:DeleteObject on arn:aws:s3:::ddb-iceberg-warehousebucket-4d5e6f/warehouse/",
        id="dagster-deletes-table-files",
    ),
    pytest.param(
        _edit_statement(JOB_ROLE, "ReadWriteWarehouseObjects", _append_action("s3:DeleteObjectVersion")),
        check_object_deletes_are_limited,
        "'s3:DeleteObjectVersion' allows s3:DeleteObjectVersion",
        id="table-files-deleted-past-versioning",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "DeleteAppliedExports", _append_action("s3:DeleteObjectVersion")),
        check_orchestrator_real_run,
        f"{DAGSTER_POLICY}: may s3:DeleteObjectVersion",
        id="exports-deleted-past-versioning",
    ),
    pytest.param(
        _edit_statement(DAGSTER_POLICY, "DeleteAppliedExports", _append_action("s3:DeleteObjectVersion")),
        check_object_deletes_are_limited,
        f"{DAGSTER_POLICY}[DeleteAppliedExports]: 's3:DeleteObjectVersion' allows s3:DeleteObjectVersion",
        id="export-housekeeping-deletes-past-versioning",
    ),
    pytest.param(
        _delete(["Resources", "JobRoleTablesGrant", "Condition"]),
        check_lake_formation_grants,
        f"LakeFormationGrants=false, DagsterRoleArn=(none): {JOB_ROLE_ARN} on table/dynamodb/*: granted ['ALTER'",
        id="lake-formation-grant-unconditional",
    ),
    pytest.param(
        _delete(["Resources", "WarehouseLocation", "Condition"]),
        check_lake_formation_grants,
        "LakeFormationGrants=false, DagsterRoleArn=(none): registered locations",
        id="location-registered-unconditionally",
    ),
    pytest.param(
        _set(["Conditions", "GrantLakeFormationPermissions"], {"Fn::Equals": ["true", "true"]}),
        check_lake_formation_grants,
        "defaults: WarehouseLocation is deployed",
        id="lake-formation-always-on",
    ),
    pytest.param(
        _set(["Resources", "DagsterTablesGrant", "Condition"], "GrantLakeFormationPermissions"),
        check_lake_formation_grants,
        "LakeFormationGrants=true, DagsterRoleArn=(none): (no principal) on table/dynamodb/*",
        id="dagster-grant-without-a-dagster-role",
    ),
    pytest.param(
        _set([*_JOB_TABLES_GRANT, "Permissions"], ["ALL"]),
        check_lake_formation_grants,
        f"{JOB_ROLE_ARN} on table/dynamodb/*: granted ['ALL']",
        id="job-role-all-on-tables",
    ),
    pytest.param(
        _set([*_JOB_TABLES_GRANT, "Permissions"], ["DELETE", "DESCRIBE", "INSERT", "SELECT"]),
        check_lake_formation_grants,
        "expected ['ALTER', 'DELETE', 'DESCRIBE', 'INSERT', 'SELECT']",
        id="job-role-cannot-commit-under-lake-formation",
    ),
    pytest.param(
        _set([*_JOB_TABLES_GRANT, "Resource", "Table", "DatabaseName"], "default"),
        check_lake_formation_grants,
        f"{JOB_ROLE_ARN} on table/default/*: granted",
        id="job-role-tables-of-another-database",
    ),
    pytest.param(
        _set(["Resources", "JobRoleDatabaseGrant", "Properties", "PermissionsWithGrantOption"], ["DESCRIBE"]),
        check_lake_formation_grants,
        "JobRoleDatabaseGrant: grants ['DESCRIBE'] with the grant option",
        id="lake-formation-grant-option",
    ),
    pytest.param(
        _set(["Resources", "DagsterTablesGrant", "Properties", "Permissions"], ["DESCRIBE", "INSERT", "SELECT"]),
        check_lake_formation_grants,
        f"{DAGSTER_ROLE_ARN} on table/dynamodb/*: granted ['DESCRIBE', 'INSERT', 'SELECT'], expected",
        id="dagster-writes-under-lake-formation",
    ),
    pytest.param(
        _delete(["Resources", "JobRoleWarehouseLocationGrant", "DependsOn"]),
        check_lake_formation_grants,
        "JobRoleWarehouseLocationGrant: does not depend on its location's registration (WarehouseLocation)",
        id="location-granted-before-it-is-registered",
    ),
    pytest.param(
        _delete(["Resources", "WarehouseLocation"]),
        check_lake_formation_grants,
        "LakeFormationGrants=true, DagsterRoleArn=(none): registered locations [], expected",
        id="warehouse-location-not-registered",
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
