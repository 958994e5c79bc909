# Ordinary reads and writes every key with the needed scope may run. Same
# format as refused.cypher; a block starting with the line "@write" runs in
# write mode with the writer key, the others in read mode with the reader
# key. {{L}} is replaced by a label unique to the test (removed after it).
RETURN 1 AS one
---
MATCH (n:{{L}}) RETURN count(n) AS c
---
match (n:{{L}}) where n.name = 'SHOW USERS' return n.name
---
RETURN 'CALL dbms.listConfig()' AS text, "LOAD CSV FROM 'x'" AS other
---
// SHOW USERS in a comment
RETURN 1 AS x /* CALL dbms.listConfig() */
---
CYPHER 5 MATCH (n:{{L}}) RETURN n LIMIT 1
---
EXPLAIN MATCH (n:{{L}}) RETURN n
---
PROFILE MATCH (n:{{L}}) RETURN n
---
MATCH (use:{{L}}) RETURN use.show AS show, {use: 1, show: 2} AS m
---
CALL db.labels() YIELD label RETURN count(label) AS labels
---
CALL db.relationshipTypes()
---
CALL db.propertyKeys() YIELD propertyKey RETURN propertyKey LIMIT 1
---
CALL db.schema.visualization()
---
CALL db.ping()
---
MATCH (n:{{L}}) CALL { WITH n RETURN n.name AS name } RETURN name
---
CALL () { MATCH (n:{{L}}) RETURN count(n) AS c } RETURN c
---
RETURN 1 AS x UNION RETURN 2 AS x
---
MATCH (n:{{L}}) WITH n ORDER BY n.name RETURN collect(n.name) AS names
---
UNWIND range(1, 3) AS i RETURN i, i * i AS sq
---
RETURN toUpper('use system') AS t, size([1, 2, 3]) AS s
---
MATCH p = (:{{L}})-[*..3]->(:{{L}}) RETURN length(p) AS len LIMIT 5
---
@write
CREATE (n:{{L}} {name: 'a', note: 'SHOW USERS'}) RETURN n.name
---
@write
MERGE (n:{{L}} {name: 'b'}) ON CREATE SET n.created = true RETURN n.name
---
@write
MATCH (a:{{L}} {name: 'a'}), (b:{{L}} {name: 'b'}) MERGE (a)-[r:LINKS]->(b) RETURN type(r)
---
@write
MATCH (n:{{L}}) SET n.seen = coalesce(n.seen, 0) + 1 RETURN count(n)
---
@write
UNWIND [1, 2] AS i CREATE (:{{L}} {i: i})
---
@write
MATCH (n:{{L}}) WHERE n.i = 2 DETACH DELETE n
---
@write
MATCH (n:{{L}} {name: 'a'}) REMOVE n.note RETURN n.name
---
@write
CALL db.labels() YIELD label WITH label LIMIT 1 MATCH (n:{{L}}) SET n.lastLabel = label
---
@write
MATCH (n:{{L}} {name: 'b'}) CALL (n) { SET n.inner = true } RETURN n.name
