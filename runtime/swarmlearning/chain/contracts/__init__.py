"""chain/contracts"""
