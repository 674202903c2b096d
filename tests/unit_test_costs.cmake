# Included by ctest after the discovered unit tests (CMakeLists.txt, TEST_INCLUDE_FILES): the
# slowest of them get a COST, in seconds under ASan on the 2-core VM, so that `ctest -j` on a
# clean clone (no Testing/Temporary/CTestCostData.txt yet) starts them first, not last. ctest
# ignores a name that no test has (e.g. one the build left out).
foreach(entry LifecycleModel.RandomOperationsAgreeWithModel:23 PowerCut.MaintainAndReencrypt:13
        ObjectsDefaults.OneByteInsertInTheMiddleOf100MBAddsAtMost3Chunks:12
        Pipeline.ChunksCutInPlaceMatchCuttingTheWholeInput:10
        Maintain.CompactsMoreThanOneBatchInOneRun:8 PowerCutDirectories.InitAndUserAdd:8
        DeltaRobustness.CrashWithZeroRowsOfDeltasAndBases:7 FastCdc.V2MeanIsNearTheAverage:6
        ParallelCut.EqualsTheSerialChainForEveryDataAndHelperCount:8)
  string(REPLACE ":" ";" parts ${entry})
  list(GET parts 0 name)
  list(GET parts 1 seconds)
  set_tests_properties(${name} PROPERTIES COST ${seconds})
endforeach()
