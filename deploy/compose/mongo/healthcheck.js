// Health check of the compose stack's MongoDB (mongosh --nodb): initiates the single-node replica set
// on its first run, then reports healthy (exit 0) only while this node is a writable primary.
// Credentials come from the container's environment, not from the command line.
const user = encodeURIComponent(process.env.MONGO_INITDB_ROOT_USERNAME);
const pwd = encodeURIComponent(process.env.MONGO_INITDB_ROOT_PASSWORD);
const admin = connect(
  `mongodb://${user}:${pwd}@127.0.0.1:27017/admin?directConnection=true&serverSelectionTimeoutMS=3000`
);
try {
  admin.adminCommand({ replSetGetStatus: 1 });
} catch (e) {
  if (e.codeName !== "NotYetInitialized") {
    throw e;
  }
  admin.adminCommand({ replSetInitiate: { _id: "rs0", members: [{ _id: 0, host: "mongo:27017" }] } });
}
quit(admin.adminCommand({ hello: 1 }).isWritablePrimary ? 0 : 1);
