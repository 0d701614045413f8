"""Two DynamoDB tables, each kept in an Iceberg table of its own, declared as two `DynamoDBIcebergTable`s."""
