"""The SWCI grammar (swci.lark), shipped inside the wheel as package data of `swci.grammar`."""
