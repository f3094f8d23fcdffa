"""The request pipeline: canonical request -> deployment -> provider request -> canonical answer."""
