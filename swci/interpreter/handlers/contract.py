"""Training contract commands, served by the Swarm Network of the active context: CREATE,
LIST, GET INFO and STATUS, PERFDATA and RESET CONTRACT."""

from __future__ import annotations

from swci.interpreter.handlers.format import data, fields, rows
from swci.interpreter.interpreter import Interpreter
from swci.interpreter.output import Output
from swci.language import commands as c
from swci.registry import handles


@handles(c.CreateContract, "Create a training contract, for a training that runs beside others.")
def create_contract(interp: Interpreter, cmd: c.CreateContract, out: Output) -> None:
    interp.network().create_contract(cmd.training_contract_name)
    out.line(f"CONTRACT CREATED : {cmd.training_contract_name}")


@handles(c.ListContracts, "List the training contracts.")
def list_contracts(interp: Interpreter, cmd: c.ListContracts, out: Output) -> None:
    rows(out, data(out, "contracts", interp.network().list_contracts()))


@handles(c.GetContractInfo, "Show a training contract's static information.")
def get_contract_info(interp: Interpreter, cmd: c.GetContractInfo, out: Output) -> None:
    fields(out, data(out, "contract", interp.network().contract_info(cmd.training_contract_name)))


@handles(c.GetContractStatus, "Show a training contract's state.")
def get_contract_status(interp: Interpreter, cmd: c.GetContractStatus, out: Output) -> None:
    fields(out, data(out, "contract_status",
                      interp.network().contract_status(cmd.training_contract_name)))


@handles(c.Perfdata, "Show, per SL-ML pair of a training, its leader status, loss, metric and "
                     "epochs.")
def perfdata(interp: Interpreter, cmd: c.Perfdata, out: Output) -> None:
    rows(out, data(out, "perfdata", interp.network().perfdata(cmd.training_contract_name)),
         empty="No performance data yet")


@handles(c.ResetContract, "Return a completed training contract to its initial state, so the "
                          "training can run again.")
def reset_contract(interp: Interpreter, cmd: c.ResetContract, out: Output) -> None:
    interp.network().reset_contract(cmd.training_contract_name)
    out.line(f"CONTRACT RESET : {cmd.training_contract_name}")
