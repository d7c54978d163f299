"""The console's people, for admins: the users of the Cognito pool, their groups, and disabling one.

Bounded: at most MAX_USER_PAGES ListUsers calls of 60 users and one ListUsersInGroup call per group
(three), each of at most 60 pages of 60; a larger pool is shown in part, and the page says so.
Disabling a user refuses their next sign-in; a session already open lasts until its idle or
absolute timeout (the console's session is the ID token Cognito issued at sign-in).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from auth import RIGHTS, ConsoleConfig, _idp
from botocore.exceptions import ClientError

from invoicing.errors import NotFound, ValidationFailed

MAX_USER_PAGES = 5  # ListUsers returns at most 60 a call
MAX_GROUP_PAGES = 5


@dataclass
class Person:
    username: str
    email: str
    status: str
    enabled: bool
    groups: list[str] = field(default_factory=list)


@dataclass
class People:
    people: list[Person]
    complete: bool  # False when the bound cut the listing


def _email_of(user: dict[str, Any]) -> str:
    listed = user.get("Attributes") or user.get("UserAttributes") or []  # ListUsers | AdminGetUser
    attributes = {a["Name"]: a["Value"] for a in listed}
    return str(attributes.get("email", user.get("Username", "")))


def list_people(config: ConsoleConfig) -> People:
    """Every user of the pool (ListUsers), with the console groups each belongs to."""
    idp = _idp(config)
    found: dict[str, Person] = {}
    complete = True
    token: str | None = None
    for n in range(MAX_USER_PAGES):
        answer = idp.list_users(
            UserPoolId=config.user_pool_id, Limit=60, **({"PaginationToken": token} if token else {})
        )
        for user in answer.get("Users", []):
            username = str(user.get("Username", ""))
            found[username] = Person(
                username=username,
                email=_email_of(user),
                status=str(user.get("UserStatus", "")),
                enabled=bool(user.get("Enabled", True)),
            )
        token = answer.get("PaginationToken")
        if not token:
            break
        if n == MAX_USER_PAGES - 1:
            complete = False
    for group in RIGHTS:
        next_token: str | None = None
        for _ in range(MAX_GROUP_PAGES):
            answer = idp.list_users_in_group(
                UserPoolId=config.user_pool_id,
                GroupName=group,
                Limit=60,
                **({"NextToken": next_token} if next_token else {}),
            )
            for user in answer.get("Users", []):
                person = found.get(str(user.get("Username", "")))
                if person is not None:
                    person.groups.append(group)
            next_token = answer.get("NextToken")
            if not next_token:
                break
    return People(people=sorted(found.values(), key=lambda p: p.email), complete=complete)


def _refused(exc: ClientError, field_name: str) -> Exception:
    error = exc.response.get("Error", {})
    if error.get("Code") == "UserNotFoundException":
        return NotFound("there is no such person in the console's user pool", code="person_not_found")
    return ValidationFailed(str(error.get("Message") or "Cognito refused this"), details={"field": field_name})


def add_person(config: ConsoleConfig, email: str, group: str) -> str:
    """A new user in ``group``; Cognito e-mails a temporary password (a new password at first sign-in).
    An existing user is only added to the group."""
    if group not in RIGHTS:
        raise ValidationFailed("choose a group", details={"field": "group"})
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise ValidationFailed("enter the person's e-mail address", details={"field": "email"})
    idp = _idp(config)
    try:
        idp.admin_create_user(
            UserPoolId=config.user_pool_id,
            Username=email,
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
            DesiredDeliveryMediums=["EMAIL"],
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "UsernameExistsException":
            raise _refused(exc, "email") from None
    idp.admin_add_user_to_group(UserPoolId=config.user_pool_id, Username=email, GroupName=group)
    return email


def set_enabled(config: ConsoleConfig, username: str, *, enabled: bool, by: str) -> str:
    """Disable (or enable again) a user. No one disables themselves: the last admin would lock everyone out."""
    username = username.strip()
    if not username or len(username) > 254:
        raise ValidationFailed("choose a person", details={"field": "username"})
    idp = _idp(config)
    try:
        user = idp.admin_get_user(UserPoolId=config.user_pool_id, Username=username)
        if not enabled and _email_of(user).lower() == by.lower():
            raise ValidationFailed("you cannot disable yourself", details={"field": "username"})
        if enabled:
            idp.admin_enable_user(UserPoolId=config.user_pool_id, Username=username)
        else:
            idp.admin_disable_user(UserPoolId=config.user_pool_id, Username=username)
    except ClientError as exc:
        raise _refused(exc, "username") from None
    return username
