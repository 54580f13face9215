"""Training-contract commands."""

from __future__ import annotations

from dataclasses import dataclass

from swci.language.commands.base import Command


@dataclass(frozen=True, kw_only=True)
class CreateContract(Command, rule="create_contract"):
    training_contract_name: str


@dataclass(frozen=True, kw_only=True)
class ListContracts(Command, rule="list_contracts"):
    pass


@dataclass(frozen=True, kw_only=True)
class GetContractInfo(Command, rule="get_contract_info"):
    training_contract_name: str


@dataclass(frozen=True, kw_only=True)
class GetContractStatus(Command, rule="get_contract_status"):
    training_contract_name: str


@dataclass(frozen=True, kw_only=True)
class Perfdata(Command, rule="perfdata"):
    training_contract_name: str


@dataclass(frozen=True, kw_only=True)
class ResetContract(Command, rule="reset_contract"):
    training_contract_name: str
