"""make deploy-check's own checks (scripts/deploy_check): the reference-cycle finder and the
MethodSettings path rule, on tiny templates written as dicts. The linters and the import step are
proved by running `make deploy-check` itself (docs/deploy-check.md)."""

from __future__ import annotations

from pathlib import Path

from scripts.deploy_check.graph import cycles, dependency_graph, referenced_names, shortest_loop
from scripts.deploy_check.layout import Placeholders, link_tree
from scripts.deploy_check.method_settings import bad_paths, encoded


def _function(env: dict) -> dict:
    return {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": env}}}


def _api(function: str) -> dict:
    uri = {"Fn::Sub": f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}:lambda:path/${{{function}.Arn}}"}
    return {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Body": {"paths": {"/x": {"get": {"uri": uri}}}}}}


def test_an_env_var_naming_the_api_inside_fn_if_closes_a_cycle_with_the_api_that_calls_the_function() -> None:
    # Given a function whose env references the API only in the branch a default never takes,
    # and an API whose integration names the function
    url = {"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}.amazonaws.com/dev"}
    template = {
        "Conditions": {"HasUrl": {"Fn::Equals": ["", ""]}},
        "Resources": {
            "Fn": _function({"URL": {"Fn::If": ["HasUrl", "https://example.com", url]}}),
            "Api": _api("Fn"),
            "Table": {"Type": "AWS::DynamoDB::Table"},
        },
    }

    # When the cycles are searched
    found = cycles(template)

    # Then the function and the API form one, as CloudFormation sees it, and the table is not in it
    assert found == [["Api", "Fn"]]
    assert shortest_loop(dependency_graph(template), "Api", {"Api", "Fn"}) == ["Api", "Fn", "Api"]


def test_sub_list_form_variables_and_escaped_names_are_not_references() -> None:
    # Given a Sub in list form whose variable map defines `Api` itself, and `${!Fn}` as literal text
    template = {
        "Resources": {
            "Fn": _function({"URL": {"Fn::Sub": ["https://${Api}/${!Fn}", {"Api": {"Ref": "Domain"}}]}}),
            "Api": _api("Fn"),
            "Domain": {"Type": "AWS::ApiGateway::DomainName"},
        }
    }

    # When the graph is built
    graph = dependency_graph(template)

    # Then the function depends on what the variable map names, not on the names in the string
    assert graph["Fn"] == {"Domain"}
    assert cycles(template) == []


def test_every_reference_form_makes_an_edge_and_parameters_and_pseudo_parameters_do_not() -> None:
    # Given each way CloudFormation lets one resource name another
    node = {
        "A": {"Ref": "Queue"},
        "B": {"Fn::GetAtt": ["Table", "Arn"]},
        "C": {"Fn::GetAtt": "Bucket.Arn"},
        "D": {"Fn::Sub": "${Topic.TopicName}-${AWS::Region}-${Stage}"},
        "E": {"Ref": "AWS::AccountId"},
    }

    # When the names are collected
    names = set(referenced_names(node))

    # Then every resource form is there (Stage, a parameter, is filtered later) and no pseudo parameter
    assert names == {"Queue", "Table", "Bucket", "Topic", "Stage"}


def test_depends_on_as_string_or_list_and_a_self_reference_count() -> None:
    # Given DependsOn in both forms, and a resource that references itself
    template = {
        "Parameters": {"Stage": {"Type": "String"}},
        "Resources": {
            "A": {"Type": "X", "DependsOn": "B"},
            "B": {"Type": "X", "DependsOn": ["C"], "Properties": {"Name": {"Ref": "Stage"}}},
            "C": {"Type": "X", "Properties": {"Self": {"Fn::GetAtt": ["C", "Arn"]}}},
        },
    }

    # When the graph and its cycles are computed
    graph = dependency_graph(template)

    # Then the edges follow DependsOn, parameters are no nodes, and only the self-reference is a cycle
    assert graph == {"A": {"B"}, "B": {"C"}, "C": {"C"}}
    assert cycles(template) == [["C"]]


def test_an_acyclic_template_passes() -> None:
    # Given the fixed shape: the function's URL comes from a parameter, the API still calls the function
    template = {
        "Parameters": {"PublicBaseUrl": {"Type": "String"}},
        "Resources": {
            "Fn": _function({"URL": {"Ref": "PublicBaseUrl"}}),
            "Api": _api("Fn"),
            "Stage": {"Type": "AWS::ApiGateway::Stage", "Properties": {"RestApiId": {"Ref": "Api"}}},
        },
    }

    # When the cycles are searched / Then there are none
    assert cycles(template) == []


def _stage(resource_type: str, *paths: str) -> dict:
    settings = [{"ResourcePath": path, "HttpMethod": "GET"} for path in paths]
    return {"Resources": {"Stage": {"Type": resource_type, "Properties": {"MethodSettings": settings}}}}


def test_method_settings_paths_must_encode_each_slash_after_the_first() -> None:
    # Given a stage with the wildcard, the root, an encoded path and two unencoded ones
    template = _stage("AWS::ApiGateway::Stage", "/*", "/", "/~1pay~1{token}", "/pay/{token}", "/pay~1{token}")

    # When the paths are checked
    bad = bad_paths(template)

    # Then exactly the unencoded ones fail, each with the form API Gateway accepts
    assert [(b.path, b.expected) for b in bad] == [
        ("/pay/{token}", "/~1pay~1{token}"),
        ("/pay~1{token}", "/~1pay~1{token}"),
    ]


def test_method_settings_of_an_untranslated_serverless_api_are_checked_too() -> None:
    # Given the SAM resource, before translation
    template = _stage("AWS::Serverless::Api", "/pay/{token}/pdf")

    # When / Then its path fails with its encoded form
    assert [b.expected for b in bad_paths(template)] == ["/~1pay~1{token}~1pdf"]
    assert encoded("/~1pay~1{token}") == "/~1pay~1{token}"


def test_env_placeholders_take_parameter_defaults_and_evaluate_conditions() -> None:
    # Given the Globals' PUBLIC_BASE_URL shape with its default (empty) parameter
    template = {
        "Parameters": {"PublicBaseUrl": {"Default": ""}, "Stage": {"Default": "dev"}},
        "Conditions": {"HasUrl": {"Fn::Not": [{"Fn::Equals": [{"Ref": "PublicBaseUrl"}, ""]}]}},
    }
    value = {
        "Fn::If": [
            "HasUrl",
            {"Ref": "PublicBaseUrl"},
            {"Fn::Sub": "https://${Api}.execute-api.${AWS::Region}/${Stage}"},
        ]
    }

    # When it is resolved without AWS
    resolved = Placeholders(template).value(value)

    # Then the API id is a placeholder, the rest is real
    assert resolved == "https://placeholder-Api.execute-api.us-east-1/dev"


def test_a_later_layer_overwrites_an_earlier_layers_file(tmp_path: Path) -> None:
    # Given two layers shipping the same module, the second one newer
    for layer, text in (("one", "old"), ("two", "new")):
        (tmp_path / layer / "python").mkdir(parents=True)
        (tmp_path / layer / "python" / "mod.py").write_text(text)
        (tmp_path / layer / "python" / "__pycache__").mkdir()
        (tmp_path / layer / "python" / "__pycache__" / "mod.cpython-312.pyc").write_text(text)

    # When both are copied into /opt in order, without .pyc
    opt = tmp_path / "opt"
    link_tree(tmp_path / "one", opt, with_pyc=False)
    link_tree(tmp_path / "two", opt, with_pyc=False)

    # Then /opt holds the later layer's file and no bytecode
    assert (opt / "python" / "mod.py").read_text() == "new"
    assert not (opt / "python" / "__pycache__").exists()
