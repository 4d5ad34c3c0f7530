import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

/**
 * Starts AWS's DynamoDB Local listening on one address only (the first argument, normally
 * 127.0.0.1); the other arguments are DynamoDB Local's own. DynamoDB Local has no host option:
 * its DynamoDBProxyServer builds a Jetty Server from the port alone, which listens on every
 * interface. Its Jetty connector is pointed at the given host before it starts.
 *
 * Run by local/dynamodbLocal.ts with Java's single-file source launcher (JEP 330).
 */
public class LoopbackDynamoDbLocal {
  public static void main(String[] args) throws Exception {
    String host = args[0];
    String[] dynamoDbArgs = java.util.Arrays.copyOfRange(args, 1, args.length);
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(dynamoDbArgs);
    Field serverField = DynamoDBProxyServer.class.getDeclaredField("server");
    serverField.setAccessible(true);
    Server server = (Server) serverField.get(proxy);
    Connector[] connectors = server.getConnectors();
    if (connectors.length == 0) throw new IllegalStateException("DynamoDB Local's Jetty server has no connector to bind");
    for (Connector connector : connectors) ((ServerConnector) connector).setHost(host);
    proxy.start();
  }
}
