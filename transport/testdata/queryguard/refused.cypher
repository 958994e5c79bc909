# Statements the query route must refuse (403 FORBIDDEN) to keys without the
# admin scope, in read mode and in write mode. One statement per block,
# blocks separated by lines of three dashes; lines starting with "# " are
# comments of this file. Every statement is harmless should the guard fail:
# the users, roles, databases and transactions it names do not exist, and
# the test removes the index and user it might create.
# {{U}} is replaced by a unique name.
SHOW USERS
---
show users
---
/* just a look */ Show Users
---
// a comment first
SHOW USERS
---
SHOW CURRENT USER
---
SHOW ROLES
---
SHOW PRIVILEGES
---
SHOW USER neo4j PRIVILEGES
---
SHOW DATABASES
---
SHOW DATABASE neo4j
---
SHOW DEFAULT DATABASE
---
SHOW HOME DATABASE
---
SHOW TRANSACTIONS
---
SHOW TRANSACTIONS YIELD transactionId, currentQuery RETURN transactionId, currentQuery
---
SHOW TRANSACTIONS YIELD * WHERE currentQuery CONTAINS 'password' RETURN *
---
TERMINATE TRANSACTIONS "neo4j-transaction-999999999"
---
terminate transactions 'neo4j-transaction-999999999'
---
SHOW TRANSACTIONS YIELD transactionId AS txId WHERE txId = 'neo4j-transaction-999999999' TERMINATE TRANSACTIONS txId YIELD message RETURN message
---
SHOW SETTINGS
---
SHOW SETTINGS YIELD name, value RETURN name, value
---
SHOW PROCEDURES
---
SHOW FUNCTIONS
---
SHOW INDEXES
---
SHOW CONSTRAINTS
---
CREATE USER {{U}} SET PASSWORD 'Atg-Guard-Secret-1' CHANGE NOT REQUIRED
---
create user {{U}} if not exists set password 'Atg-Guard-Secret-1'
---
CREATE OR REPLACE USER {{U}} SET PASSWORD 'Atg-Guard-Secret-1'
---
ALTER USER atg_guard_nobody SET PASSWORD 'Atg-Guard-Secret-2'
---
ALTER USER atg_guard_nobody IF EXISTS SET PASSWORD 'Atg-Guard-Secret-2'
---
ALTER CURRENT USER SET PASSWORD FROM 'Atg-Guard-Old' TO 'Atg-Guard-Secret-3'
---
RENAME USER atg_guard_nobody TO atg_guard_nobody2
---
DROP USER atg_guard_nobody IF EXISTS
---
CREATE ROLE atg_guard_role
---
GRANT ROLE admin TO atg_guard_nobody
---
DENY READ {*} ON GRAPH * TO atg_guard_role
---
REVOKE ROLE admin FROM atg_guard_nobody
---
CREATE DATABASE atg_guard_db
---
DROP DATABASE atg_guard_db IF EXISTS
---
STOP DATABASE atg_guard_db
---
START DATABASE atg_guard_db
---
ALTER DATABASE atg_guard_db SET ACCESS READ ONLY
---
CREATE ALIAS atg_guard_alias FOR DATABASE neo4j
---
CREATE INDEX {{U}} IF NOT EXISTS FOR (n:AtgGuardLabel) ON (n.x)
---
CREATE CONSTRAINT {{U}} IF NOT EXISTS FOR (n:AtgGuardLabel) REQUIRE n.x IS UNIQUE
---
DROP INDEX atg_guard_no_index IF EXISTS
---
DROP CONSTRAINT atg_guard_no_constraint IF EXISTS
---
CALL dbms.listConfig()
---
CaLl dbms.listConfig()
---
CALL dbms.listConfig() YIELD name, value RETURN name, value
---
CALL dbms.components()
---
CALL dbms.info()
---
CALL dbms.listConnections()
---
CALL dbms.killConnection('bolt-999999999')
---
CALL dbms.queryJmx('*:*')
---
CALL dbms.showCurrentUser()
---
CALL dbms.listCapabilities()
---
CALL dbms.routing.getRoutingTable({})
---
CALL db.clearQueryCaches()
---
CALL db.prepareForReplanning()
---
CALL db.stats.retrieve('GRAPH COUNTS')
---
CALL db.stats.status()
---
CALL db.info()
---
CALL tx.setMetaData({app: 'x'})
---
CALL db.createLabel('AtgGuardNeverLabel')
---
CALL `dbms`.`listConfig`()
---
CYPHER 5 CALL dbms.listConfig()
---
CYPHER runtime=slotted SHOW USERS
---
EXPLAIN SHOW USERS
---
PROFILE CALL dbms.listConfig()
---
explain call db.clearQueryCaches()
---
CYPHER 5 PROFILE SHOW TRANSACTIONS
---
USE system SHOW USERS
---
USE system MATCH (n) RETURN n
---
USE neo4j MATCH (n) RETURN count(n)
---
MATCH (n) CALL { USE system RETURN 1 AS x } RETURN x
---
CALL { CALL dbms.listConfig() YIELD name RETURN name } RETURN name
---
MATCH (n) WITH n LIMIT 1 CALL { CALL dbms.components() YIELD name RETURN name } RETURN name
---
RETURN 'x' AS name UNION CALL dbms.components() YIELD name RETURN name
---
RETURN 'x' AS name UNION ALL CALL dbms.listConfig() YIELD name RETURN name
---
WITH 1 AS one CALL dbms.listConfig() YIELD name RETURN name
---
CALL db.labels() YIELD label WITH label CALL db.clearQueryCaches() YIELD value RETURN value
---
UNWIND [1] AS x CALL (x) { CALL dbms.info() YIELD id RETURN id } RETURN id
---
OPTIONAL CALL dbms.components() YIELD name RETURN name
---
LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row
---
load csv with headers from "http://127.0.0.1:1/x.csv" as row return row
---
WITH 'file:///etc/hosts' AS url LOAD CSV FROM url AS row RETURN row
---
MATCH (n) WITH n LIMIT 1 CALL { LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row } RETURN row
