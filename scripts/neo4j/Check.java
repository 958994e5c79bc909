// Readiness check used by scripts/neo4j.sh: does the server at NEO4J_URI answer
// an authenticated Cypher query (RETURN 1 on the default database)?
//
//   java -cp '<neo4j lib>/*:<dir of Check.class>' Check [--wait SECONDS] [--pid PID]
//
// Reads NEO4J_URI, NEO4J_USER and NEO4J_PASSWORD from the environment. With
// --wait it retries until the deadline, giving up early when the server process
// (--pid) has exited or the credentials are refused.
//
// Exit codes: 0 answering, 1 not answering (timeout), 2 usage,
// 3 authentication refused, 4 server process exited.

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.neo4j.driver.AccessMode;
import org.neo4j.driver.AuthTokens;
import org.neo4j.driver.Config;
import org.neo4j.driver.Driver;
import org.neo4j.driver.GraphDatabase;
import org.neo4j.driver.Logging;
import org.neo4j.driver.Session;
import org.neo4j.driver.SessionConfig;
import org.neo4j.driver.exceptions.SecurityException;

public final class Check {
    public static void main(String[] args) {
        long waitSeconds = 0;
        long pid = -1;
        try {
            for (int i = 0; i < args.length; i++) {
                switch (args[i]) {
                    case "--wait" -> waitSeconds = Long.parseLong(args[++i]);
                    case "--pid" -> pid = Long.parseLong(args[++i]);
                    default -> throw new IllegalArgumentException(args[i]);
                }
            }
        } catch (RuntimeException e) {
            System.err.println("usage: Check [--wait SECONDS] [--pid PID]");
            System.exit(2);
        }
        String uri = env("NEO4J_URI");
        String user = env("NEO4J_USER");
        String password = env("NEO4J_PASSWORD");

        Config config = Config.builder()
                .withLogging(Logging.none())
                .withConnectionTimeout(3, TimeUnit.SECONDS)
                .withConnectionAcquisitionTimeout(10, TimeUnit.SECONDS)
                .withMaxConnectionPoolSize(1)
                .withMaxTransactionRetryTime(0, TimeUnit.SECONDS)
                .withoutEncryption()
                .build();
        long deadline = System.nanoTime() + Duration.ofSeconds(waitSeconds).toNanos();
        String last = "no attempt made";
        while (true) {
            try (Driver driver = GraphDatabase.driver(uri, AuthTokens.basic(user, password), config);
                    Session session = driver.session(
                            SessionConfig.builder().withDefaultAccessMode(AccessMode.READ).build())) {
                // Auto-commit query: no managed-transaction retries, one attempt per loop.
                long one = session.run("RETURN 1 AS ok").single().get("ok").asLong();
                if (one == 1) {
                    System.exit(0);
                }
                last = "unexpected answer " + one;
            } catch (SecurityException e) { // includes AuthenticationException
                System.err.println("neo4j refused the credentials for user '" + user + "': " + e.getMessage());
                System.exit(3);
            } catch (RuntimeException e) {
                last = e.getClass().getSimpleName() + ": " + e.getMessage();
            }
            if (pid > 0 && !ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) {
                System.err.println("neo4j process " + pid + " exited; last error: " + last);
                System.exit(4);
            }
            if (System.nanoTime() >= deadline) {
                System.err.println("neo4j at " + uri + " is not answering: " + last);
                System.exit(1);
            }
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                System.exit(1);
            }
        }
    }

    private static String env(String name) {
        String value = System.getenv(name);
        if (value == null || value.isEmpty()) {
            System.err.println(name + " is not set");
            System.exit(2);
        }
        return value;
    }
}
