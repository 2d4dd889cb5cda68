"""Ketamine dosing: the protocol as data and the safety gates every dose passes."""
