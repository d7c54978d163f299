"""Template reading: short tags, parameters, conditions, intrinsics, SAM globals."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from local.cfn import NO_VALUE, Template, TemplateError, dns_bucket_name, load_yaml, merge_globals

from .conftest import FIXTURE_TEMPLATE

TEMPLATE = textwrap.dedent(
    """
    Parameters:
      Stage: {Type: String, Default: dev}
      Name: {Type: String, Default: shop}
      Empty: {Type: String, Default: ""}
      Zones: {Type: CommaDelimitedList, Default: "a,b,c"}
      Count: {Type: Number, Default: 3}
    Mappings:
      Sizes:
        local: {memory: 128}
    Conditions:
      IsLocal: !Equals [!Ref Stage, local]
      HasEmpty: !Not [!Equals [!Ref Empty, ""]]
      Both: !And [!Condition IsLocal, !Not [!Condition HasEmpty]]
      Either: !Or [!Condition HasEmpty, !Equals ["3", !Ref Count]]
    Resources:
      Table:
        Type: AWS::DynamoDB::Table
        Properties: {TableName: !Sub "${Name}-${Stage}-items"}
      Queue:
        Type: AWS::SQS::Queue
      Bucket:
        Type: AWS::S3::Bucket
      Skipped:
        Type: AWS::SQS::Queue
        Condition: HasEmpty
      Fn:
        Type: AWS::Serverless::Function
        Properties: {CodeUri: x/, Handler: app.h}
      Api:
        Type: AWS::Serverless::Api
        Properties: {StageName: !Ref Stage}
    """
)


@pytest.fixture
def template(tmp_path: Path) -> Template:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    return Template(path, stack_name="st")


def test_short_tags_become_long_forms(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "A: !Ref X\nB: !GetAtt T.Arn\nC: !Sub ['${a}', {a: 1}]\nD: !If [C, 1, 2]\nE: !Join [',', [a]]\n"
        "F: !Select [0, [a]]\nG: !Condition C\nH: !GetAtt [T, StreamArn]\n"
    )
    data = load_yaml(path)
    assert data["A"] == {"Ref": "X"}
    assert data["B"] == {"Fn::GetAtt": ["T", "Arn"]}
    assert data["C"] == {"Fn::Sub": ["${a}", {"a": 1}]}
    assert data["D"] == {"Fn::If": ["C", 1, 2]}
    assert data["E"] == {"Fn::Join": [",", ["a"]]}
    assert data["F"] == {"Fn::Select": [0, ["a"]]}
    assert data["G"] == {"Condition": "C"}
    assert data["H"] == {"Fn::GetAtt": ["T", "StreamArn"]}


def test_parameters_default_with_stage_local(template: Template) -> None:
    assert template.parameters["Stage"] == "local"
    assert template.parameters["Name"] == "shop"
    assert template.parameters["Zones"] == ["a", "b", "c"]
    assert template.parameters["Count"] == "3"


def test_parameter_overrides_and_unknown_parameters(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    tpl = Template(path, parameter_overrides={"Stage": "prod", "Empty": "x"})
    assert tpl.parameters["Stage"] == "prod"
    assert "Skipped" in tpl.resources
    with pytest.raises(TemplateError, match="unknown parameter"):
        Template(path, parameter_overrides={"Nope": "1"})


def test_conditions(template: Template) -> None:
    assert template.condition("IsLocal") is True
    assert template.condition("HasEmpty") is False
    assert template.condition("Both") is True
    assert template.condition("Either") is True
    assert "Skipped" not in template.resources  # its Condition is false


def test_refs_and_get_atts(template: Template) -> None:
    r = template.resolve
    assert r({"Ref": "Table"}) == "shop-local-items"
    assert r({"Fn::GetAtt": ["Table", "Arn"]}) == "arn:aws:dynamodb:us-east-1:123456789012:table/shop-local-items"
    assert r({"Ref": "Queue"}).endswith("/123456789012/st-Queue")
    assert r({"Fn::GetAtt": ["Queue", "QueueName"]}) == "st-Queue"
    assert r({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:aws:sqs:us-east-1:123456789012:st-Queue"
    assert r({"Ref": "Bucket"}) == "st-bucket"
    assert r({"Fn::GetAtt": ["Bucket", "Arn"]}) == "arn:aws:s3:::st-bucket"
    assert r({"Ref": "Fn"}) == "st-Fn"
    assert r({"Fn::GetAtt": ["Fn", "Arn"]}) == "arn:aws:lambda:us-east-1:123456789012:function:st-Fn"
    api_id = r({"Ref": "Api"})
    assert len(api_id) == 10 and api_id.isalnum()
    assert r({"Ref": "AWS::Region"}) == "us-east-1"
    assert r({"Ref": "AWS::AccountId"}) == "123456789012"
    assert r({"Ref": "AWS::StackName"}) == "st"
    with pytest.raises(TemplateError):
        r({"Ref": "Missing"})


def test_sub_join_select_split_if_novalue(template: Template) -> None:
    r = template.resolve
    assert r({"Fn::Sub": "${AWS::StackName}-${Table.Arn}-${!Literal}"}) == (
        "st-arn:aws:dynamodb:us-east-1:123456789012:table/shop-local-items-${Literal}"
    )
    assert r({"Fn::Sub": ["${x}/${Name}", {"x": {"Ref": "Stage"}}]}) == "local/shop"
    assert r({"Fn::Join": ["-", ["a", {"Ref": "Stage"}, 1]]}) == "a-local-1"
    assert r({"Fn::Select": ["1", {"Ref": "Zones"}]}) == "b"
    assert r({"Fn::Split": [",", "x,y"]}) == ["x", "y"]
    assert r({"Fn::If": ["IsLocal", "yes", "no"]}) == "yes"
    assert r({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "memory"]}) == 128
    value = {"keep": 1, "drop": {"Fn::If": ["HasEmpty", "x", {"Ref": "AWS::NoValue"}]}}
    assert r(value) == {"keep": 1}
    assert r(["a", {"Ref": "AWS::NoValue"}, "b"]) == ["a", "b"]
    assert r({"Ref": "AWS::NoValue"}) is NO_VALUE


def test_bad_intrinsics_are_reported(template: Template) -> None:
    with pytest.raises(TemplateError):
        template.resolve({"Fn::Select": [5, ["a"]]})
    with pytest.raises(TemplateError):
        template.resolve({"Fn::Sub": "${Nope}"})
    with pytest.raises(TemplateError):
        template.resolve({"Fn::ImportValue": "x"})


def test_globals_merge() -> None:
    glob = {"Timeout": 10, "Layers": ["A"], "Environment": {"Variables": {"X": "1", "Y": {"Ref": "P"}}}}
    local = {"Timeout": 3, "Layers": ["B"], "Environment": {"Variables": {"Y": {"Fn::Sub": "z"}, "Z": "3"}}}
    merged = merge_globals(glob, local)
    assert merged == {
        "Timeout": 3,
        "Layers": ["A", "B"],
        "Environment": {"Variables": {"X": "1", "Y": {"Fn::Sub": "z"}, "Z": "3"}},
    }


def test_creation_order_puts_dead_letter_queue_first(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(
        "Resources:\n"
        "  Main:\n    Type: AWS::SQS::Queue\n    Properties:\n      RedrivePolicy:\n"
        "        deadLetterTargetArn: !GetAtt Dlq.Arn\n        maxReceiveCount: 3\n"
        "  Dlq:\n    Type: AWS::SQS::Queue\n"
    )
    tpl = Template(path)
    assert tpl.creation_order(["Main", "Dlq"]) == ["Dlq", "Main"]


def test_fixture_template_function_environment() -> None:
    tpl = Template(FIXTURE_TEMPLATE)
    props = tpl.resolved_properties("EchoFunction")
    env = props["Environment"]["Variables"]
    assert env["TABLE_NAME"] == "local-DataTable"
    assert env["GREETING"] == "hello from local"
    assert "OPTIONAL" not in env  # !If -> AWS::NoValue
    assert props["Timeout"] == 5 and props["Runtime"] == "python3.12"
    assert tpl.resolved_properties("SlowFunction")["Timeout"] == 1
    assert props["Layers"] == [tpl.registry.refs["SharedLayer"]]


def test_bucket_names_are_valid_dns_names() -> None:
    assert dns_bucket_name("local", "DocumentsBucket") == "local-documentsbucket"
    long_name = dns_bucket_name("a-very-long-stack-name-for-testing", "AnEvenLongerLogicalIdOfSomeBucketResource")
    assert len(long_name) <= 63 and long_name == long_name.lower()
    assert dns_bucket_name("My_Stack", "B") == "my-stack-b"


def test_the_real_template_resolves() -> None:
    root = Path(__file__).resolve().parents[2]
    tpl = Template(root / "template.yaml")
    for logical_id in tpl.resources:
        tpl.resolved_properties(logical_id)
    env = tpl.resolved_properties(tpl.of_type("AWS::Serverless::Function")[0])["Environment"]["Variables"]
    assert env["STAGE"] == "local"


def test_sam_env_vars_file_points_functions_at_a_moto_server() -> None:
    from local.sam_env import env_vars_file

    out = env_vars_file(Template(FIXTURE_TEMPLATE), "http://host.docker.internal:5000", "http://127.0.0.1:3000")
    assert out["Parameters"]["AWS_ENDPOINT_URL"] == "http://host.docker.internal:5000"
    echo = out["EchoFunction"]
    assert echo["TABLE_NAME"] == "local-DataTable"
    assert echo["BUCKET_NAME"] == "local-filesbucket"
    assert echo["JOBS_QUEUE_URL"] == "http://host.docker.internal:5000/123456789012/local-JobsQueue"
    assert echo["PUBLIC_BASE_URL"] == "http://127.0.0.1:3000"
    assert set(out) == {
        "Parameters",
        "EchoFunction",
        "AuthorizerFunction",
        "SlowFunction",
        "WorkerFunction",
        "TickFunction",
    }
