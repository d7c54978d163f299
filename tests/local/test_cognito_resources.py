"""The local runtime creates a template's Cognito user pool, app client and groups and its generated
secrets in moto, and `--cognito-user` users who can sign in with the printed password."""

from __future__ import annotations

from pathlib import Path

import boto3
from moto import mock_aws

from local.cfn import Template
from local.resources import ResourceManager
from tests.support.aws import _InProcessAWS

TEMPLATE = """
Resources:
  Pool:
    Type: AWS::Cognito::UserPool
    Properties:
      UserPoolName: people
      UsernameAttributes: [email]
      MfaConfiguration: "OFF"
  PoolClient:
    Type: AWS::Cognito::UserPoolClient
    Properties:
      UserPoolId: !Ref Pool
      ExplicitAuthFlows: [ALLOW_USER_PASSWORD_AUTH]
      IdTokenValidity: 2
      TokenValidityUnits: { IdToken: hours }
  Clerks:
    Type: AWS::Cognito::UserPoolGroup
    Properties: { UserPoolId: !Ref Pool, GroupName: clerk, Precedence: 2 }
  Key:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString: { PasswordLength: 40, ExcludePunctuation: true }
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handle
      CodeUri: fn/
      Environment:
        Variables: { POOL: !Ref Pool, CLIENT: !Ref PoolClient, SECRET: !Ref Key, ISSUER: !GetAtt Pool.ProviderURL }
"""


def test_user_pool_client_groups_and_secret_are_made_and_users_sign_in(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    with mock_aws():
        template = Template(path, stage="local")
        manager = ResourceManager(template, _InProcessAWS())  # type: ignore[arg-type]
        manager.create_all()
        env = template.resolved_properties("Fn")["Environment"]["Variables"]
        idp = boto3.client("cognito-idp", region_name="us-east-1")
        pool = idp.describe_user_pool(UserPoolId=env["POOL"])["UserPool"]
        assert pool["Name"] == "people" and pool["UsernameAttributes"] == ["email"]
        assert env["ISSUER"] == f"https://cognito-idp.us-east-1.amazonaws.com/{env['POOL']}"
        client = idp.describe_user_pool_client(UserPoolId=env["POOL"], ClientId=env["CLIENT"])["UserPoolClient"]
        assert client["ExplicitAuthFlows"] == ["ALLOW_USER_PASSWORD_AUTH"] and client["IdTokenValidity"] == 2
        assert [g["GroupName"] for g in idp.list_groups(UserPoolId=env["POOL"])["Groups"]] == ["clerk"]
        secret = boto3.client("secretsmanager", region_name="us-east-1").get_secret_value(SecretId=env["SECRET"])
        assert len(secret["SecretString"]) == 40 and secret["SecretString"].isalnum()

        (made,) = manager.create_users([("jo@acme.example", "clerk")])
        assert made["user_pool_id"] == env["POOL"] and made["client_id"] == env["CLIENT"]
        answer = idp.initiate_auth(
            ClientId=env["CLIENT"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "jo@acme.example", "PASSWORD": made["password"]},
        )
        assert answer["AuthenticationResult"]["IdToken"].count(".") == 2
        groups = idp.admin_list_groups_for_user(UserPoolId=env["POOL"], Username="jo@acme.example")["Groups"]
        assert [g["GroupName"] for g in groups] == ["clerk"]
