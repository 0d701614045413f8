"""ddb_iceberg: keep an Apache Iceberg table exactly equal to a DynamoDB table, from its exports."""
