"""In-memory fakes of the stores, for tests about rules rather than DynamoDB.

Each fake keeps the public methods of its PynamoDB store and the same outcomes
(returns, refusals, all-or-nothing writes); tests/contract/ runs the same cases on the
fake and on the real store on moto, so the two cannot drift apart unnoticed."""
