"""Reliability and security tests: real faults injected into the real Neo4j server and the real workers."""
