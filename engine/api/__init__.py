"""Thin HTTP controllers: each turns a request into a pipeline call and the outcome into a response."""
