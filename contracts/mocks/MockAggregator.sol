// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @notice A Chainlink-style AggregatorV3 feed whose answers its operator publishes (the devnet's "oracle
/// network"). Emits AnswerUpdated like Chainlink's aggregators.
contract MockAggregator {
    uint8 public immutable decimals;
    string public description;
    address public operator;
    uint80 public latestRound;
    mapping(uint80 round => int256) public answers;
    mapping(uint80 round => uint256) public timestamps;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    event OperatorSet(address operator);

    error NotOperator(address account);

    constructor(uint8 decimals_, string memory description_, int256 initial, address operator_) {
        decimals = decimals_;
        description = description_;
        operator = operator_;
        _publish(initial);
    }

    function setOperator(address operator_) external {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        operator = operator_;
        emit OperatorSet(operator_);
    }

    function updateAnswer(int256 answer) external {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        _publish(answer);
    }

    function latestAnswer() external view returns (int256) {
        return answers[latestRound];
    }

    function latestRoundData() external view returns (uint80, int256, uint256, uint256, uint80) {
        uint80 r = latestRound;
        return (r, answers[r], timestamps[r], timestamps[r], r);
    }

    function _publish(int256 answer) internal {
        latestRound += 1;
        answers[latestRound] = answer;
        timestamps[latestRound] = block.timestamp;
        emit AnswerUpdated(answer, latestRound, block.timestamp);
    }
}
