// purpose: The server's JVM heap (maximum and used bytes), for the memory check before a projection.
// returns: max, used
CALL dbms.queryJmx('java.lang:type=Memory') YIELD attributes
RETURN attributes.HeapMemoryUsage.value.properties.max AS max, attributes.HeapMemoryUsage.value.properties.used AS used
